"""Fault injection (issue #7): kill -9 of the whole workflow at random moments, `make demo`
killed as a whole, and a real full disk while saving a checkpoint.

Every kill is followed by what README tells users to do ("run the same command
again"; a stale Snakemake lock is cleared with `python -m bert_pretraining.locks`,
which `make demo` does itself), and the finished run must be bit-identical to an
uninterrupted one: every tensor of every checkpoint (weights, Adam slots, global
step, input position), the evaluations and the export.

FAULT_SEED=<n> replays a run of the randomised test (the seed is printed in every
assertion message); FAULT_TRIALS=<n> (default 3) runs more trials;
FAULT_FULL_DEMO=1 makes the `make demo` test use the real demo config and compare
with the demo_run fixture (several minutes more).
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from bert_pretraining.files import file_sha256
from bert_pretraining.run_layout import CHECKPOINT_STATE, RunLayout
from fault_helpers import (
    AFTER_EVENTS,
    ALL_SAVES,
    CONFIG,
    DATA_EVENTS,
    RUN,
    SEGMENT_ENDS,
    TRAINING_EVENTS,
    Event,
    KillPoint,
    clear_stale_lock,
    file_exists,
    make_venv_link,
    processes_in,
    records_digests,
    remove_training_results,
    result_differences,
    run_with_kill,
    segment_ends_of,
    snakemake_command,
    write_small_config,
)
from workflow_helpers import REPO, as_ordinary_user, demo_dag_config, mounted_tmpfs, fresh_clone, snakemake, write_yaml

pytestmark = pytest.mark.faults

SEED = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(2**32))
TRIALS = int(os.environ.get("FAULT_TRIALS") or 3)
MAX_KILLS_PER_TRIAL = 2
# (phase, first step) of each segment of the small run, by its last step.
PHASE_OF_SEGMENT = {60: ("phase128", 30), 30: ("phase128", 0), 70: ("phase512", 60)}
assert sorted(PHASE_OF_SEGMENT) == sorted(step for ends in SEGMENT_ENDS.values() for step in ends)


RESUMED_FROM = re.compile(r"resuming from \S*model\.ckpt-\d+ \(step (\d+)\)")


def replay():
    return f"[FAULT_SEED={SEED}]"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small run without interruption: what every interrupted run must reproduce."""
    workdir = fresh_clone(str(tmp_path_factory.mktemp("faults-reference")))
    write_small_config(workdir)
    start = time.time()
    result = snakemake(workdir, "--configfile", CONFIG, "--cores", "2", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    print(f"reference run: {time.time() - start:.0f} s")
    return os.path.join(workdir, "results", RUN)


def delay_for(event, rng):
    if event.name.startswith("a save is in progress"):
        return 0.0  # a save of the tiny model lasts tens of milliseconds
    if event.stage == "data":
        return rng.uniform(0.0, 1.0)  # the data jobs take a few seconds each
    if "log appeared" in event.name:
        return rng.uniform(0.0, 8.0)  # TensorFlow's start, the restore, the first steps
    return rng.uniform(0.0, 2.5)


def choose_kill(pool, run_dir, rng):
    pending = [event for event in pool if not event.happened(run_dir)]
    if not pending:
        return None
    event = rng.choice(pending)
    return KillPoint(event, delay_for(event, rng))


def check_after_kill(outcome, run_dir, newest_before, history):
    """Right after a SIGKILL: no survivor, no partial checkpoint visible, nothing lost."""
    from bert_pretraining import checkpoints

    assert not outcome.survivors, f"{replay()} processes survived the kill of the group: {outcome.survivors}\n{history}"
    layout = RunLayout(run_dir)
    for phase in ALL_SAVES:
        directory = layout.phase_dir(phase)
        for ref in checkpoints.list_checkpoints(directory):
            problems = checkpoints.verify_checkpoint(ref.prefix)
            assert not problems, f"{replay()} a checkpoint with an index is not intact after the kill: {problems}\n{history}"
        newest = max((ref.step for ref in checkpoints.list_checkpoints(directory)), default=-1)
        assert newest >= newest_before.get(phase, -1), (
            f"{replay()} {phase}: newest checkpoint went back from {newest_before.get(phase)} to {newest}\n{history}"
        )
        newest_before[phase] = newest
        state = os.path.join(directory, CHECKPOINT_STATE)
        if os.path.exists(state):
            import tensorflow as tf

            latest = tf.train.latest_checkpoint(directory)
            assert latest is None or not checkpoints.verify_checkpoint(latest), (
                f"{replay()} {state} names {latest}, which is not intact\n{history}"
            )


def expected_resumes(outcome, run_dir):
    """(segment log, step) pairs: a segment killed after an intermediate save must resume there."""
    layout = RunLayout(run_dir)
    found = []
    for end, (phase, start) in PHASE_OF_SEGMENT.items():
        steps = [s for s in outcome.checkpoints_after_kill.get(phase, []) if start < s < end]
        if steps and end not in outcome.checkpoints_after_kill.get(phase, []):
            found.append((layout.log("pretrain", phase=phase, step=end), max(steps)))
    return found


def run_trial(workdir, run_dir, rng, pools, targets, logs_dir, trial, history):
    """Run, kill at random events (one pool per kill), rerun as a user would, until it completes."""
    newest_before, resumes = {}, []
    for attempt in range(len(pools) + 1):
        kill = choose_kill(pools[attempt], run_dir, rng) if attempt < len(pools) else None
        if attempt > 0:
            cleared = clear_stale_lock(workdir)
            history.append(f"    locks: {cleared.strip() or 'nothing to clear'}")
        outcome = run_with_kill(
            snakemake_command(*targets), workdir, run_dir, kill, os.path.join(logs_dir, f"trial{trial}-{attempt}.log")
        )
        history.append(f"  trial {trial} run {attempt}: {outcome.describe()}")
        if not outcome.killed:
            assert kill is None or kill.event.stage != "data", f"{replay()} the data stages were not interrupted"
            assert outcome.returncode == 0, (
                f"{replay()} the rerun failed:\n" + "\n".join(history) + "\n" + outcome.output[-6000:]
            )
            return resumes
        history.append(f"    complete checkpoints after the kill: {outcome.checkpoints_after_kill}")
        if pools[attempt] is DATA_EVENTS:
            summaries = [os.path.exists(RunLayout(run_dir).records_sidecar(seq)) for seq in (128, 512)]
            assert not all(summaries), f"{replay()} the kill came after the data stages\n" + "\n".join(history)
        check_after_kill(outcome, run_dir, newest_before, "\n".join(history))
        resumes += expected_resumes(outcome, run_dir)
    raise AssertionError(f"{replay()} trial {trial} did not finish\n" + "\n".join(history))


@pytest.mark.slow
@pytest.mark.snakemake
def test_random_kill9_of_the_whole_workflow_then_rerun(reference, tmp_path):
    rng = random.Random(SEED)
    workdir = fresh_clone(str(tmp_path / "clone"))
    write_small_config(workdir)
    run_dir = os.path.join(workdir, "results", RUN)
    logs_dir = str(tmp_path)
    history = [f"seed {SEED}, {TRIALS} trials"]
    started = time.time()
    for trial in range(TRIALS):
        if trial == 0:
            # From a fresh clone: the first kill lands in the data stages, the next in training.
            pools, targets, export = [DATA_EVENTS, TRAINING_EVENTS + AFTER_EVENTS], [], True
        else:
            # Data stages done: back to step 0, kills land in training (and the phase switch).
            remove_training_results(run_dir)
            pools, export = [TRAINING_EVENTS] * MAX_KILLS_PER_TRIAL, False
            targets = [RunLayout(os.path.join("results", RUN)).checkpoint_files("phase512", 70)["index"]]
        resumes = run_trial(workdir, run_dir, rng, pools, targets, logs_dir, trial, history)
        problems = result_differences(run_dir, reference, export=export)
        if trial == 0:
            assert records_digests(run_dir) == records_digests(reference), (
                f"{replay()} records or vocabulary differ after a kill in the data stages\n" + "\n".join(history)
            )
        for log, step in resumes:
            # Each rerun of a segment rewrites its log, and a later kill can leave a newer checkpoint to resume from.
            resumed = [int(s) for s in RESUMED_FROM.findall(open(log).read())]
            if not resumed or resumed[-1] < step:
                problems.append(f"{os.path.relpath(log, run_dir)} does not say it resumed from model.ckpt-{step} "
                                f"or later (it says {resumed})")
        history.append(f"  trial {trial}: {'OK' if not problems else problems}")
        assert not problems, f"{replay()} trial {trial}:\n" + "\n".join(problems) + "\n" + "\n".join(history)
    print("\n".join(history) + f"\n{TRIALS} trials in {time.time() - started:.0f} s")


@pytest.mark.slow
@pytest.mark.snakemake
def test_make_demo_killed_as_a_whole_then_rerun(tmp_path, request):
    """`make demo` (make, the lock clearing, Snakemake, its jobs) killed with SIGKILL mid-training."""
    rng = random.Random(SEED + 1)
    workdir = fresh_clone(str(tmp_path / "clone"))
    make_venv_link(workdir)
    full = bool(os.environ.get("FAULT_FULL_DEMO"))
    if full:
        # The real demo against demo_run, made in another directory with its own vocabulary.
        demo_run = request.getfixturevalue("demo_run")
        config = demo_dag_config(workdir)
        write_yaml(os.path.join(workdir, "demo", "config.yaml"), config)  # the clone's `make demo` runs demo_run's DAG
        reference_dir, segment_ends = demo_run.run_dir, segment_ends_of(config)
        kill = KillPoint(Event("phase128/model.ckpt-150 appeared", file_exists(lambda layout: layout.checkpoint_files("phase128", 150)["index"]), "training"),
                         rng.uniform(0.0, 3.0))
    else:
        # The Makefile has no config override: the clone's demo config is the small run.
        write_small_config(workdir, path="demo/config.yaml", run_name="demo")
        reference_dir, segment_ends = request.getfixturevalue("reference"), None
        # Mid-training; not "a save is in progress", which a 10 ms poll may miss.
        pool = [event for event in TRAINING_EVENTS if not event.name.startswith("a save is in progress")]
        kill = choose_kill(pool, os.path.join(workdir, "results", "demo"), rng)
    run_dir = os.path.join(workdir, "results", "demo")
    first = run_with_kill(["make", "demo"], workdir, run_dir, kill, str(tmp_path / "make-1.log"), timeout=1800)
    history = f"{replay()} {first.describe()}; checkpoints after the kill: {first.checkpoints_after_kill}"
    assert first.killed, history + "\n" + first.output[-3000:]
    assert not first.survivors, history + f"\nsurvivors: {first.survivors}"
    assert "pip install" not in first.output, "make built an environment: " + first.output[:2000]
    assert os.listdir(os.path.join(workdir, ".snakemake", "locks")), "expected the killed run's lock to be left behind"
    second = run_with_kill(["make", "demo"], workdir, run_dir, None, str(tmp_path / "make-2.log"), timeout=1800)
    assert second.returncode == 0, history + "\n" + second.output[-6000:]
    assert "removed a stale lock left by a killed run" in second.output, second.output[:3000]
    assert "pip install" not in second.output and "-m venv" not in second.output, "make rebuilt the environment"
    problems = result_differences(run_dir, reference_dir, export=True, segment_ends=segment_ends)
    assert not problems, history + "\n" + "\n".join(problems)
    print(f"{history}; rerun {second.seconds:.0f} s")


@pytest.mark.slow
@pytest.mark.snakemake
def test_kill9_of_snakemake_alone_the_orphaned_job_keeps_the_lock(reference, tmp_path):
    """SIGKILL to the Snakemake process only (the OOM killer, `kill -9 <pid>`): its job lives on."""
    from bert_pretraining.locks import clear_stale_lock as clear

    workdir = str(tmp_path / "clone")
    shutil.copytree(os.path.dirname(os.path.dirname(reference)), workdir, symlinks=True)
    run_dir = os.path.join(workdir, "results", RUN)
    layout = RunLayout(run_dir)
    remove_training_results(run_dir)
    with open(tmp_path / "snakemake.log", "w") as log:
        process = subprocess.Popen(
            snakemake_command(os.path.relpath(layout.checkpoint_files("phase128", 30)["index"], workdir)), cwd=workdir,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.time() + 120
        while not os.path.exists(layout.log("pretrain", phase="phase128", step=30)):
            assert process.poll() is None and time.time() < deadline, open(tmp_path / "snakemake.log").read()[-3000:]
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        time.sleep(0.5)
        orphans = processes_in(workdir)
        assert orphans, "expected the segment's job to outlive Snakemake"
        outcome = clear(workdir)
        assert not outcome.startswith("removed"), (
            f"the lock was removed while the killed Snakemake's job still runs: {orphans}; a rerun would "
            "start a second training process of the same segment in the same directory"
        )
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the orphans are still in Snakemake's process group
        except ProcessLookupError:
            pass


# --- a real full disk ---------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    with mounted_tmpfs(tmp_path / "tmpfs", "size=4m") as mount_point:
        yield mount_point


def fill(directory):
    """Write a filler file until the file system has no space left."""
    path = os.path.join(directory, "filler")
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as error:
            assert error.errno == 28, error
    with open(path, "ab", buffering=0) as handle:  # the last partial page too
        try:
            while True:
                handle.write(b"\0")
        except OSError:
            pass
    return path


def small_segment_command(tmp_path, output: str, *, end: int, every: int) -> list[str]:
    """run_pretraining.py on a tiny model and synthetic records: one segment 0-``end``, a save every ``every``."""
    from bert_pretraining.modeling import BertConfig
    from synthetic_records import VOCAB_SIZE, make_records

    records = str(tmp_path / "records")
    make_records(records, per_file=200)
    bert_config = str(tmp_path / "bert_config.json")
    BertConfig(
        vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    ).to_json_file(bert_config)
    return [
        sys.executable, os.path.join(REPO, "workflow/scripts/run_pretraining.py"),
        f"--bert_config_file={bert_config}", f"--input_file={records}/shard_*.tfrecord",
        f"--output_dir={output}", "--max_seq_length=32", "--max_predictions_per_seq=5",
        "--train_batch_size=8", f"--num_train_steps={end}", "--num_warmup_steps=2", f"--end_step={end}",
        f"--save_checkpoints_steps={every}", f"--log_every_steps={every}", "--keep_checkpoints=2",
        "--use_xla=False", "--precision=fp32", "--distribution=none", "--hang_timeout_seconds=0",
    ]


def wait_for_first_save(process, output: str, *, poll_seconds: float) -> None:
    """Until the segment's training.log reports its first saved checkpoint (at most 300 s)."""
    training_log = os.path.join(output, "training.log")
    deadline = time.time() + 300
    while not (os.path.exists(training_log) and "saved " in open(training_log).read()):
        assert process.poll() is None, "training ended before its first save:\n" + process.communicate()[0][-3000:]
        assert time.time() < deadline, "no first checkpoint in 300 s"
        time.sleep(poll_seconds)


def test_disk_full_while_saving_keeps_the_previous_checkpoint(small_tmpfs, tmp_path):
    from bert_pretraining import checkpoints

    output = os.path.join(small_tmpfs, "phase32")
    command = small_segment_command(tmp_path, output, end=400, every=200)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_first_save(process, output, poll_seconds=0.005)
        os.kill(process.pid, 19)  # SIGSTOP: fill the disk between the two saves
        try:
            filler = fill(small_tmpfs)
        finally:
            os.kill(process.pid, 18)  # SIGCONT
        stdout, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert checkpoints.list_checkpoints(output)[0].step == 200, os.listdir(output)
    assert process.returncode == 2, f"exit {process.returncode}\n{stdout[-4000:]}"
    error_lines = [line for line in stdout.splitlines() if line.startswith("error:")]
    assert error_lines, stdout[-4000:]
    assert "No space left on device" in error_lines[-1] and output in error_lines[-1], error_lines[-1]
    assert "model.ckpt-400" in error_lines[-1] and "previous checkpoint stays the latest" in error_lines[-1]
    assert "Traceback" not in stdout, stdout[-4000:]
    # The previous checkpoint is the newest complete one, intact; nothing partial is visible.
    assert [ref.step for ref in checkpoints.list_checkpoints(output)] == [200], sorted(os.listdir(output))
    newest = checkpoints.newest_valid_checkpoint(output)
    assert newest.step == 200 and not checkpoints.verify_checkpoint(newest.prefix)
    import tensorflow as tf

    assert tf.train.latest_checkpoint(output).endswith("model.ckpt-200")
    assert not [name for name in os.listdir(output) if name.startswith(("model.ckpt-400", ".saving-"))], os.listdir(output)
    # README: free space, rerun; the rerun resumes from the kept checkpoint and finishes.
    os.unlink(filler)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert f"resuming from {output}/model.ckpt-200 (step 200)" in rerun.stderr + rerun.stdout
    assert checkpoints.newest_valid_checkpoint(output).step == 400


# --- SIGTERM and SLURM's pre-timeout signal -------------------------------------


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGUSR1"])
def test_a_stop_signal_saves_the_current_step_and_exits_for_a_rerun(signal_name, tmp_path):
    """scancel/SLURM's timeout (SIGTERM, 30 s before SIGKILL) or `--signal=USR1@600`: save now, exit 75."""
    import re

    from bert_pretraining import checkpoints

    output = str(tmp_path / "phase32")
    end = 100000  # never reached: only the signal ends this segment
    command = small_segment_command(tmp_path, output, end=end, every=1000)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_first_save(process, output, poll_seconds=0.05)
        time.sleep(1.0)  # between two saves: the stop must write a checkpoint of its own
        process.send_signal(getattr(signal, signal_name))
        signalled = time.time()
        stdout, _ = process.communicate(timeout=60)
        seconds = time.time() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 75, f"exit {process.returncode} (expected 75: stopped, rerun)\n{stdout[-4000:]}"
    assert seconds < 30, f"took {seconds:.0f} s to stop; SLURM sends SIGKILL 30 s after SIGTERM by default"
    stopped = re.search(rf"stopped by {signal_name} at step (\d+); checkpoint saved", stdout)
    assert stopped, stdout[-4000:]
    step = int(stopped.group(1))
    assert step % 1000, f"step {step} is a regular save: the test did not exercise the stop's own save"
    newest = checkpoints.newest_valid_checkpoint(output)
    assert newest.step == step and not checkpoints.verify_checkpoint(newest.prefix)
    assert not os.path.exists(os.path.join(output, f"model.ckpt-{end}.index"))  # the segment is not done
    # The rerun resumes at that step (here: to a nearer end).
    rerun_command = [flag for flag in command if not flag.startswith("--end_step=")] + [f"--end_step={step + 3}"]
    rerun = subprocess.run(rerun_command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert f"resuming from {output}/model.ckpt-{step} (step {step})" in rerun.stdout + rerun.stderr


def append_document(path: str, text: str) -> None:
    """Add a JSON Lines record to a zstd-compressed corpus file, as a user adding a document would."""
    import zstandard

    with open(path, "rb") as handle:
        lines = zstandard.ZstdDecompressor().stream_reader(handle).read()
    with open(path, "wb") as handle:
        handle.write(zstandard.ZstdCompressor().compress(lines + json.dumps({"text": text}).encode() + b"\n"))


@pytest.mark.slow
@pytest.mark.snakemake
def test_a_changed_corpus_stops_a_finished_run_before_anything_runs(reference, tmp_path):
    """As root and as an ordinary user: the plan, the dry run, the run and the status name the change alike."""
    workdir = tempfile.mkdtemp(prefix="changed-corpus-", dir="/tmp")  # an ordinary user can reach it
    try:
        shutil.copytree(os.path.dirname(os.path.dirname(reference)), workdir, symlinks=True, dirs_exist_ok=True)
        run_dir = os.path.join(workdir, "results", RUN)
        layout = RunLayout(run_dir)
        corpus = os.path.join(workdir, "demo", "corpus", "python-docs.jsonl.zst")
        kept = {path: file_sha256(path)
                for path in (layout.vocab, os.path.join(layout.export_dir, "hf", "model.safetensors"))}
        original = open(corpus, "rb").read()
        append_document(corpus, "A document added after the run finished. It changes the vocabulary and records.")
        since = min(ref.step for ref in checkpoints_of(run_dir))
        told = f"inputs changed since step {since}: corpus file demo/corpus/python-docs.jsonl.zst has another content"
        plan = subprocess.run([sys.executable, "workflow/scripts/plan.py", "--configfile", CONFIG], cwd=workdir,
                              capture_output=True, text=True)
        assert plan.returncode == 1 and told in plan.stdout, plan.stdout + plan.stderr
        status = subprocess.run([sys.executable, "workflow/scripts/status.py", "--configfile", CONFIG], cwd=workdir,
                                capture_output=True, text=True)
        assert status.returncode == 0 and told in status.stdout, status.stdout + status.stderr
        for command in (snakemake_command("-n"), snakemake_command()):
            result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
            assert result.returncode != 0 and told in result.stdout + result.stderr, result.stderr[-3000:]
        # As an ordinary user, for whom Snakemake's write protection of finished checkpoints applies.
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "65534:65534", workdir], check=True)
        result = subprocess.run(as_ordinary_user(snakemake_command()), cwd=workdir, capture_output=True, text=True,
                                env={**os.environ, "HOME": workdir})
        output = result.stdout + result.stderr
        assert result.returncode != 0 and told in output and "ProtectedOutputException" not in output, output[-3000:]
        assert {path: file_sha256(path) for path in kept} == kept  # nothing was remade
        # The content restored, with a new modification time: no alarm.
        with open(corpus, "wb") as handle:
            handle.write(original)
        plan = subprocess.run([sys.executable, "workflow/scripts/plan.py", "--configfile", CONFIG], cwd=workdir,
                              capture_output=True, text=True)
        assert plan.returncode == 0 and "inputs changed" not in plan.stdout, plan.stdout + plan.stderr
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def checkpoints_of(run_dir: str):
    from bert_pretraining import checkpoints

    return [
        ref for phase in ALL_SAVES
        for ref in checkpoints.list_checkpoints(RunLayout(run_dir).phase_dir(phase), include_segment_ends=False)
    ]
