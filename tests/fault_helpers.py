"""Fault injection for the workflow tests (issue #7): kill -9 at chosen moments, compare results.

A *kill point* is an event seen in the run's files (a checkpoint appeared, a
save is in progress, a records file was started, ...) plus a random extra
delay. `run_with_kill` starts a command in its own process group, watches the
files and, once the event has happened and the delay passed, kills the whole
group with SIGKILL: Snakemake (or make), its job shells and the training or
records processes die at the same instant, as on a node failure or a lost
login session.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bert_pretraining.files import file_sha256
from bert_pretraining.run_layout import RunLayout
from checkpoint_helpers import read_all_tensors
from workflow_helpers import SNAKEMAKE, load_yaml, write_yaml

RUN = "faults"
CONFIG = "faults.yaml"
PHASE1, PHASE2 = "phase128", "phase512"
# The small run: phase 1 steps 0-60 in two segments of 30, phase 2 steps 60-70;
# a checkpoint every 10 steps.
SEGMENT_ENDS = {PHASE1: (30, 60), PHASE2: (70,)}
ALL_SAVES = {PHASE1: (10, 20, 30, 40, 50, 60), PHASE2: (70,)}


def small_config(repo_dir: str, run_name: str = RUN) -> dict:
    """demo/config.yaml with fewer steps, shards and a smaller vocabulary: the same workflow, faster.

    Each run trains its own vocabulary: the vocabulary stage is reproducible,
    so runs in different directories must agree to the bit from the corpus on.
    """
    config = load_yaml(os.path.join(repo_dir, "demo", "config.yaml"))
    config["run_name"] = run_name
    config["corpus"]["num_shards"] = 2
    config["vocabulary"]["size"] = 1000
    config["records"]["dupe_factor"] = 1
    training = config["training"]
    training.update(save_checkpoints_steps=10, log_every_steps=10, keep_checkpoints=2)
    # XLA compilation is 12 of a segment's 25 s here; every restart pays it again.
    # Without XLA the CPU run is deterministic too, and the fault paths are the same.
    training["use_xla"] = False
    assert training["precision"] == "fp32"
    first, second = config["phases"]
    first.update(first_step=0, last_step=60, num_train_steps=60, num_warmup_steps=10, segment_steps=30)
    second.update(first_step=60, last_step=70, num_train_steps=70, num_warmup_steps=5, segment_steps=30)
    return config


def write_small_config(workdir: str, path: str = CONFIG, run_name: str = RUN) -> str:
    return write_yaml(os.path.join(workdir, path), small_config(workdir, run_name))


def snakemake_command(*targets: str) -> list[str]:
    return [SNAKEMAKE, "--configfile", CONFIG, "--cores", "2", *targets]


# --- events ----------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something visible in the run's files; `happened(run_dir)` is polled."""

    name: str
    happened: Callable[[str], bool]
    stage: str  # "data", "training" or "after"


def file_exists(path: Callable[[RunLayout], str]) -> Callable[[str], bool]:
    """``path``: the file of a run's layout, e.g. ``lambda layout: layout.vocab``."""
    return lambda run_dir: os.path.exists(path(RunLayout(run_dir)))


def _any(pattern: Callable[[RunLayout], str]) -> Callable[[str], bool]:
    return lambda run_dir: bool(glob.glob(pattern(RunLayout(run_dir))))


def _saving(phase: str) -> Callable[[str], bool]:
    def happened(run_dir):
        try:
            return any(name.startswith(".saving-") for name in os.listdir(RunLayout(run_dir).phase_dir(phase)))
        except FileNotFoundError:
            return False

    return happened


def _checkpoint_seen(phase: str, step: int) -> Callable[[str], bool]:
    """model.ckpt-<step> exists now, or was pruned after being written."""

    def happened(run_dir):
        layout = RunLayout(run_dir)
        later = [s for s in ALL_SAVES[phase] if s > step]
        return any(os.path.exists(layout.checkpoint_files(phase, s)["index"]) for s in [step, *later])

    return happened


def _segment_log(phase: str, end: int) -> Callable[[str], bool]:
    return file_exists(lambda layout: layout.log("pretrain", phase=phase, step=end))


DATA_EVENTS = [
    Event("a corpus file was prepared", _any(lambda layout: layout.prepared_text("*")), "data"),
    Event("a corpus shard was written", _any(lambda layout: layout.shard("*")), "data"),
    Event("the vocabulary was written", file_exists(lambda layout: layout.vocab), "data"),
    Event("a records job started", _any(lambda layout: layout.records_file("*", "*") + "*"), "data"),
]  # the later data jobs (bert_config.json, the summaries) may come after training has started
TRAINING_EVENTS = (
    [Event(f"the segment {PHASE1} 0-30 log appeared (TensorFlow starting)", _segment_log(PHASE1, 30), "training")]
    + [Event(f"{phase}/model.ckpt-{step} appeared", _checkpoint_seen(phase, step), "training")
       for phase, steps in ALL_SAVES.items() for step in steps]
    + [Event(f"a save is in progress in {phase}", _saving(phase), "training") for phase in ALL_SAVES]
    + [Event(f"the segment {PHASE1} 30-60 log appeared", _segment_log(PHASE1, 60), "training"),
       Event(f"the segment {PHASE2} 60-70 log appeared", _segment_log(PHASE2, 70), "training")]
)
AFTER_EVENTS = [
    Event(f"{PHASE1}/eval.json appeared", file_exists(lambda layout: layout.eval_json(PHASE1)), "after"),
    Event(f"{PHASE2}/eval.json appeared", file_exists(lambda layout: layout.eval_json(PHASE2)), "after"),
]


@dataclass(frozen=True)
class KillPoint:
    event: Event
    delay: float  # seconds after the event was seen

    def __str__(self):
        return f"{self.delay:.2f} s after '{self.event.name}'"


# --- running and killing -----------------------------------------------------


@dataclass
class Outcome:
    command: list[str]
    kill: KillPoint | None
    killed: bool
    returncode: int | None
    seconds: float
    output: str
    survivors: list[str] = field(default_factory=list)
    # Complete checkpoints (index present) right after the kill, per phase.
    checkpoints_after_kill: dict = field(default_factory=dict)

    def describe(self):
        what = f"killed {self.kill}" if self.killed else f"exit {self.returncode}"
        return f"{' '.join(os.path.basename(c) for c in self.command[:1])} {' '.join(self.command[1:])}: {what} ({self.seconds:.1f} s)"


def processes_in(workdir: str) -> list[str]:
    """Live processes whose working directory is inside ``workdir`` ("pid command")."""
    target = os.path.realpath(workdir)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.path.realpath(os.readlink(f"/proc/{entry}/cwd"))
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd == target or cwd.startswith(target + os.sep)):
            found.append(f"{entry} {command[:200]}")
    return found


def run_with_kill(command, workdir, run_dir, kill: KillPoint | None, log_path, *, timeout=900, env=None) -> Outcome:
    """Run ``command`` in its own session; SIGKILL its whole process group at ``kill``."""
    start = time.time()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
        killed = False
        seen_at = None
        try:
            while process.poll() is None:
                now = time.time()
                assert now - start < timeout, f"{command} did not finish in {timeout} s"
                if kill is not None:
                    if seen_at is None and kill.event.happened(run_dir):
                        seen_at = now
                    if seen_at is not None and now - seen_at >= kill.delay:
                        os.killpg(process.pid, signal.SIGKILL)
                        killed = True
                        process.wait()
                        break
                time.sleep(0.01)
        except BaseException:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            raise
    outcome = Outcome(command, kill, killed, process.returncode, time.time() - start, open(log_path).read())
    if killed:
        outcome.checkpoints_after_kill = {phase: complete_steps(RunLayout(run_dir).phase_dir(phase)) for phase in ALL_SAVES}
        # Everything started by the command was in its process group: nothing may survive
        # (a training process that outlived Snakemake would race the rerun's).
        deadline = time.time() + 10
        while (survivors := processes_in(workdir)) and time.time() < deadline:
            time.sleep(0.2)
        outcome.survivors = survivors
    return outcome


def clear_stale_lock(workdir) -> str:
    """What README tells users after a killed run: `python -m bert_pretraining.locks`."""
    result = subprocess.run(
        [sys.executable, "-m", "bert_pretraining.locks"], cwd=workdir, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


# --- checkpoints and results -------------------------------------------------


def complete_steps(phase_dir: str) -> list[int]:
    from bert_pretraining import checkpoints

    return [ref.step for ref in checkpoints.list_checkpoints(phase_dir, include_segment_ends=False)]


def checkpoint_differences(prefix: str, reference_prefix: str) -> list[str]:
    """Tensor by tensor (weights, Adam slots, global step, input position): what differs."""
    ours, theirs = read_all_tensors(prefix), read_all_tensors(reference_prefix)
    problems = []
    if sorted(ours) != sorted(theirs):
        problems.append(f"tensor names differ: only in {prefix}: {sorted(set(ours) - set(theirs))}, "
                        f"only in the reference: {sorted(set(theirs) - set(ours))}")
    for name in sorted(set(ours) & set(theirs)):
        if ours[name].shape != theirs[name].shape or not np.array_equal(ours[name], theirs[name]):
            problems.append(f"{os.path.basename(prefix)}: {name} differs from the reference")
    for name in ("global_step", "input_position"):
        if name not in ours:
            problems.append(f"{prefix} has no {name}")
    return problems


def tree_digests(directory: str, skip=("README.md", ".snakemake_timestamp")) -> dict:
    digests = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if name not in skip:
                path = os.path.join(root, name)
                digests[os.path.relpath(path, directory)] = file_sha256(path)
    return digests


def segment_ends_of(config: dict) -> dict:
    """{phase directory: final steps of its segments} from a config's phases."""
    from bert_pretraining.settings import settings_from_config

    ends = {}
    for segment in settings_from_config(config).segments:
        ends.setdefault(segment.phase, []).append(segment.end_step)
    return {phase: tuple(steps) for phase, steps in ends.items()}


def result_differences(run_dir: str, reference_dir: str, *, export: bool = True, segment_ends=None) -> list[str]:
    """Everything that must be bit-identical to the uninterrupted reference run."""
    import json

    from bert_pretraining import checkpoints

    segment_ends = segment_ends or SEGMENT_ENDS
    layout, reference = RunLayout(run_dir), RunLayout(reference_dir)
    problems = []
    for phase in segment_ends:
        phase_dir, reference_phase = layout.phase_dir(phase), reference.phase_dir(phase)
        steps, reference_steps = complete_steps(phase_dir), complete_steps(reference_phase)
        missing = sorted(set(reference_steps) - set(steps))
        if missing:
            problems.append(f"{phase}: checkpoints {missing} of the reference run are missing (have {steps})")
        for step in segment_ends[phase]:
            for place in (phase_dir, layout.segment_ends(phase)):
                prefix = checkpoints.checkpoint_prefix(place, step)
                if not os.path.exists(prefix + checkpoints.INDEX_SUFFIX):
                    problems.append(f"segment end {prefix} is missing")
                elif damage := checkpoints.verify_checkpoint(prefix):
                    problems.append(f"{prefix} does not verify: {damage}")
        leftovers = [name for name in os.listdir(phase_dir) if name.startswith((".saving-", ".checkpoint.tmp"))]
        if leftovers:
            problems.append(f"{phase}: a killed save's files were never cleaned up: {leftovers}")
        newest = checkpoints.newest_valid_checkpoint(phase_dir)
        if newest is None or newest.step != segment_ends[phase][-1]:
            problems.append(f"{phase}: newest checkpoint is {newest}, expected step {segment_ends[phase][-1]}")
        for step in sorted(set(steps) & set(reference_steps)):
            problems += checkpoint_differences(
                checkpoints.checkpoint_prefix(phase_dir, step), checkpoints.checkpoint_prefix(reference_phase, step)
            )
        if export:
            ours, theirs = (json.load(open(d.eval_json(phase))) for d in (layout, reference))
            for evaluation in (ours, theirs):  # results/<run_name>/...: the run names may differ
                evaluation["checkpoint"] = os.path.basename(evaluation["checkpoint"])
            if ours != theirs:
                problems.append(f"{phase}/eval.json differs: {ours} vs reference {theirs}")
    if export:
        ours, theirs = tree_digests(layout.export_dir), tree_digests(reference.export_dir)
        if ours != theirs:
            differing = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
            problems.append(f"export differs from the reference in {differing}")
    return problems


def records_digests(run_dir: str) -> dict:
    return {
        os.path.relpath(path, run_dir): file_sha256(path)
        for path in sorted(glob.glob(RunLayout(run_dir).records_file("*", "*")))
        + [RunLayout(run_dir).vocab]
    }


def remove_training_results(run_dir: str) -> None:
    """Back to "data stages done": the next run trains from step 0 (finished checkpoints are read-only)."""
    layout = RunLayout(run_dir)
    for path in (
        layout.phase_dir(PHASE1), layout.phase_dir(PHASE2), layout.export_dir, layout.report_dir,
        os.path.dirname(layout.log("pretrain", phase=PHASE1, step=0)),
        os.path.dirname(layout.log("pretrain", phase=PHASE2, step=0)),
        layout.log("export_model"),
    ):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)


def make_venv_link(workdir: str) -> None:
    """A clone's .venv made of links to this interpreter's environment, marked installed.

    `make demo` then finds $(VENV)/.installed newer than pyproject.toml and does not
    build an environment; .venv/bin/python is this environment's interpreter.
    """
    venv = os.path.join(workdir, ".venv")
    os.makedirs(venv)
    for name in os.listdir(sys.prefix):
        if not name.startswith("."):
            os.symlink(os.path.join(sys.prefix, name), os.path.join(venv, name))
    installed = os.path.join(venv, ".installed")
    open(installed, "w").close()
    past = time.time() - 3600
    os.utime(os.path.join(workdir, "pyproject.toml"), (past, past))
