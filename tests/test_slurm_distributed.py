"""Data-parallel training on the SLURM test cluster: ranks started by srun, as on Puhti.

tests/test_distributed.py checks the engines with ranks started by hand in
SLURM's environment; here real `sbatch` jobs on the two-node testbed
(tests/slurm_testbed.py) start them with `srun`, the way the workflow's
training rule does (`srun --nodes --ntasks-per-node --cpus-per-task
--kill-on-bad-exit=1`), so node lists, task ids, ports and the failure of a
step come from SLURM itself. Per engine (TensorFlow's multi-worker strategy
on TF 2.21, Horovod on TF 2.15):

* EQUIVALENCE: 2 nodes x 2 ranks with batch 4 per rank give the weights of
  one process with batch 16 made of the same examples (the tolerance and
  why it holds: tests/test_distributed.py);
* ONE RANK KILLED: SIGKILL of a rank on the second node ends the whole job
  (sacct: FAILED) within FAULT_BOUND_SECONDS, and a resubmitted job resumes
  from the newest checkpoint;
* THE WORKFLOW: the demo in miniature through `snakemake --profile` with
  Horovod (`training.python` pointing at the environment that has it); the
  multi-worker strategy runs the same way in tests/test_slurm.py, whose
  segments use Snakemake's own environment and the default engine.
"""

import glob
import os
import re
import shlex
import signal
import subprocess
import time

import pytest

import slurm_testbed
from bert_pretraining.run_layout import RunLayout
from test_distributed import (  # noqa: F401  (data is a fixture)
    MAIN_PYTHON,
    RUN_PRETRAINING,
    TF215_PYTHON,
    assert_close,
    clean_env,
    data,
    horovod_in,
    movement,
    run_reference,
    training_flags,
)
from checkpoint_helpers import weights_at
from test_slurm import SEGMENT_STEPS, sacct, sacct_final, small_config, write_testbed_profile
from workflow_helpers import SNAKEMAKE, fresh_clone, load_yaml, write_yaml

pytestmark = [pytest.mark.slurm, pytest.mark.distributed]

NODES, TASKS_PER_NODE = 2, 2
RANKS = NODES * TASKS_PER_NODE
STEPS = 6
FAULT_BOUND_SECONDS = 90  # srun's --kill-on-bad-exit, job cleanup and slurmdbd's record
JOB_TIMEOUT = 900

HOROVOD_TF215 = pytest.mark.skipif(
    not horovod_in(TF215_PYTHON), reason="Horovod is not built in .venv-tf215 (make test builds it, ~10 min)"
)
ENGINES = [
    pytest.param(("multiworker", MAIN_PYTHON), id="multiworker-tf2.21"),
    pytest.param(("horovod", TF215_PYTHON), id="horovod-tf2.15", marks=HOROVOD_TF215),
]


class SrunJob:
    """An sbatch job on both nodes whose srun starts RANKS training processes, one log per rank."""

    def __init__(self, python, flags, output_dir):
        self.output_dir = str(output_dir)
        os.makedirs(self.output_dir, exist_ok=True)
        script = os.path.join(self.output_dir, "job.sh")
        with open(script, "w") as handle:
            handle.write(
                "#!/bin/bash\n"
                f"srun --nodes={NODES} --ntasks-per-node={TASKS_PER_NODE} --cpus-per-task=1 --kill-on-bad-exit=1"
                f" --output={shlex.quote(self.output_dir)}/rank%t.log"
                f" {shlex.quote(python)} {shlex.quote(RUN_PRETRAINING)} {shlex.join(flags)}\n"
            )
        submitted = subprocess.run(
            ["sbatch", "--parsable", "-o", os.path.join(self.output_dir, "job.out"), "-A", slurm_testbed.ACCOUNT,
             "-p", "gpu", f"--nodes={NODES}", f"--ntasks-per-node={TASKS_PER_NODE}", "--cpus-per-task=1",
             "--gres=gpu:v100:4", "--mem=16G", "-t", "30", script],
            capture_output=True, text=True, timeout=60, env=clean_env(),
        )
        assert submitted.returncode == 0, submitted.stderr
        self.job_id = submitted.stdout.strip().split(";")[0]

    def log(self, rank):
        path = os.path.join(self.output_dir, f"rank{rank}.log")
        return open(path, errors="replace").read() if os.path.exists(path) else ""

    def tails(self, chars=2500):
        return "\n".join(f"--- rank {rank}\n{self.log(rank)[-chars:]}" for rank in range(RANKS))

    def state(self):
        records = sacct(self.job_id, "State")
        return records[0]["State"] if records else "PENDING"

    def wait(self, timeout=JOB_TIMEOUT):
        """The job's final sacct record."""
        deadline = time.time() + timeout
        while subprocess.run(["squeue", "-h", "-j", self.job_id], capture_output=True, text=True).stdout.strip():
            if time.time() > deadline:
                subprocess.run(["scancel", self.job_id])
                raise AssertionError(f"job {self.job_id} still running after {timeout} s\n{self.tails()}")
            time.sleep(1)
        return sacct_final(self.job_id, "ExitCode", "NNodes")

    def rank_pid(self, rank):
        """The process id of a rank (all "nodes" of the testbed are this machine)."""
        for environ in glob.glob("/proc/[0-9]*/environ"):
            try:
                variables = open(environ, "rb").read().split(b"\0")
                cmdline = open(environ[: -len("environ")] + "cmdline", "rb").read()
            except OSError:
                continue
            if (RUN_PRETRAINING.encode() in cmdline and f"SLURM_JOB_ID={self.job_id}".encode() in variables
                    and f"SLURM_PROCID={rank}".encode() in variables):
                return int(environ.split("/")[2])
        return None


def run_job(python, flags, output_dir):
    job = SrunJob(python, flags, output_dir)
    record = job.wait()
    assert record["State"] == "COMPLETED", f"{record}\n{job.tails()}"
    return job


@pytest.mark.parametrize("engine_python", ENGINES)
def test_srun_ranks_on_two_nodes_equal_one_process_with_the_union_batch(
    engine_python, data, tmp_path, slurm_cluster
):
    engine, python = engine_python
    started = time.monotonic()
    job = run_job(python, training_flags(data, tmp_path / "ranks", batch=4, engine=engine), tmp_path / "ranks")
    seconds = time.monotonic() - started
    for rank in range(RANKS):
        assert re.search(rf"rank {rank} of {RANKS} \(local rank {rank % TASKS_PER_NODE}\) .*engine {engine}",
                         job.log(rank)), job.tails()
    nodes = {step["NodeList"] for step in sacct(job.job_id, "JobID", "NodeList", steps=True)
             if step["JobID"] == f"{job.job_id}.0"}
    assert nodes == {"node[1-2]"}, nodes
    run_reference(python, tmp_path / "one", training_flags(data, tmp_path / "one", batch=4 * RANKS, engine="none"),
                  ranks=RANKS)
    distributed, single = weights_at(tmp_path / "ranks", STEPS), weights_at(tmp_path / "one", STEPS)
    worst = assert_close(distributed, single)
    assert movement(data, single) > 1e-4  # the comparison is not vacuous
    assert distributed["global_step"] == STEPS and distributed["input_position"] == STEPS
    print(f"{engine} under srun: {RANKS} ranks x 4 vs 1 x {4 * RANKS}: max |diff| {worst:.2e}; job took {seconds:.0f} s")


@pytest.mark.faults
@pytest.mark.parametrize("engine_python", ENGINES)
def test_a_killed_rank_fails_the_job_promptly_and_the_rerun_resumes(engine_python, data, tmp_path, slurm_cluster):
    from bert_pretraining import checkpoints

    engine, python = engine_python
    flags = training_flags(data, tmp_path, batch=4, steps=100000, engine=engine)
    job = SrunJob(python, flags, tmp_path / "killed")
    victim = RANKS - 1  # a rank on the second node, not the chief
    try:
        deadline = time.time() + 600
        while checkpoints.newest_valid_checkpoint(str(tmp_path)) is None or job.rank_pid(victim) is None:
            assert time.time() < deadline and job.state() in ("PENDING", "RUNNING"), (
                f"no checkpoint within 600 s: {job.state()}\n{job.tails()}"
            )
            time.sleep(0.5)
        os.kill(job.rank_pid(victim), signal.SIGKILL)
        killed = time.time()
        record = job.wait(timeout=FAULT_BOUND_SECONDS)
        seconds = time.time() - killed
    finally:
        subprocess.run(["scancel", job.job_id])
    assert record["State"] == "FAILED", f"{record}\n{job.tails()}"
    assert seconds < FAULT_BOUND_SECONDS
    newest = checkpoints.newest_valid_checkpoint(str(tmp_path))
    assert newest is not None and newest.step >= 2, job.tails()

    # The rerun (same flags, as a resubmitted segment) resumes from the newest checkpoint.
    end = newest.step + 2
    rerun = run_job(python, flags + [f"--end_step={end}"], tmp_path / "rerun")
    assert f"resuming from {tmp_path}/model.ckpt-{newest.step} (step {newest.step})" in rerun.log(0), rerun.tails()
    assert weights_at(tmp_path, end)["global_step"] == end
    print(f"{engine}: rank {victim} killed at step >= {newest.step}; job {record['State']} after {seconds:.0f} s")


@pytest.mark.slow
@pytest.mark.snakemake
@pytest.mark.site_tf
@HOROVOD_TF215
def test_the_demo_through_the_profile_with_horovod(slurm_cluster, tmp_path):
    """The workflow's segments as 2 x 2 Horovod ranks (TF 2.15 via training.python); evaluation on TF 2.21."""
    workdir = fresh_clone(str(tmp_path))
    config_path = small_config(workdir)
    config = load_yaml(config_path)
    config["training"].update(python=TF215_PYTHON, distribution="horovod")
    # One segment per phase: each is a job of four Horovod ranks; the resumption across
    # segments and the rerun are tests/test_slurm.py's.
    phase1, phase2 = config["phases"]
    phase1.update(last_step=SEGMENT_STEPS, num_train_steps=SEGMENT_STEPS)
    phase2.update(first_step=SEGMENT_STEPS, last_step=SEGMENT_STEPS + 10, num_train_steps=SEGMENT_STEPS + 10)
    write_yaml(config_path, config)
    profile = write_testbed_profile(workdir)
    env = dict(os.environ, SBATCH_ACCOUNT=slurm_testbed.ACCOUNT)
    result = subprocess.run(
        [SNAKEMAKE, "--profile", profile, "--configfile", config_path], cwd=workdir, capture_output=True, text=True,
        timeout=1800, env=env,
    )
    where = f"(clone {workdir}; SLURM logs in {slurm_cluster.log_dir})"
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:] + where
    layout = RunLayout(os.path.join(workdir, "results", config["run_name"]))
    last = config["phases"][1]["last_step"]
    assert os.path.exists(layout.checkpoint_files("phase512", last)["index"]) and os.path.exists(layout.export_dir)
    for phase, step in (("phase128", SEGMENT_STEPS), ("phase512", last)):
        log = open(layout.log("pretrain", phase=phase, step=step)).read()
        assert f"rank 0 of {RANKS}" in log and "engine horovod" in log, log[-3000:] + where
        assert "Horovod rendezvous" in log, log[-3000:]
    assert os.path.exists(layout.eval_json("phase512"))
