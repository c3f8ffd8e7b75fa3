"""A segment killed mid-way: the rerun resumes it from its newest checkpoint, earlier segments stay."""

import os
import signal
import subprocess
import time

import pytest

from workflow_helpers import SNAKEMAKE, fresh_clone, load_yaml, snakemake, write_yaml


def small_config(workdir):
    config = load_yaml(os.path.join(workdir, "demo", "config.yaml"))
    config["run_name"] = "resume"
    config["corpus"]["num_shards"] = 2
    config["records"]["dupe_factor"] = 1
    config["vocabulary"]["size"] = 1000
    config["training"]["save_checkpoints_steps"] = 10
    config["training"]["log_every_steps"] = 5
    config["phases"][0].update(last_step=60, num_train_steps=60, num_warmup_steps=5, segment_steps=20)
    config["phases"][1].update(first_step=60, last_step=70, num_train_steps=70, num_warmup_steps=5, batch_size_per_gpu=4)
    return write_yaml(os.path.join(workdir, "resume.yaml"), config)


def wait_for(path, process, timeout=900):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, "the workflow ended before the checkpoint appeared"
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.5)


@pytest.mark.slow
def test_killed_segment_resumes_from_its_newest_checkpoint(tmp_path):
    workdir = fresh_clone(str(tmp_path))
    config = small_config(workdir)
    run = os.path.join(workdir, "results", "resume")
    process = subprocess.Popen(
        [SNAKEMAKE, "--configfile", config, "--cores", "2"], cwd=workdir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # Segment 20-40 has saved its step-30 checkpoint: kill its training process.
    wait_for(f"{run}/phase128/model.ckpt-30.index", process)
    first_segment_mtime = os.stat(f"{run}/phase128/model.ckpt-20.index").st_mtime_ns
    subprocess.run(["pkill", "-9", "-f", "run_pretraining.py.*--end_step=40"], check=False)
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0, output
    assert not os.path.exists(f"{run}/phase128/model.ckpt-40.index")

    result = snakemake(workdir, "--configfile", config, "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    log = open(f"{run}/logs/phase128/segment-40.log").read()
    assert "resuming from" in log and "model.ckpt-30 (step 30)" in log
    assert os.stat(f"{run}/phase128/model.ckpt-20.index").st_mtime_ns == first_segment_mtime
    assert "segment-20" not in result.stdout + result.stderr  # the finished segment was not rerun
    assert os.path.exists(f"{run}/phase512/model.ckpt-70.index")
