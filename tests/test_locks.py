"""Two runs on one directory: the second refuses; a killed run's lock does not block the next."""

import os
import signal
import subprocess
import time

import pytest

from bert_pretraining.locks import clear_stale_lock
from workflow_helpers import fresh_clone, snakemake, snakemake_command


@pytest.mark.slow
@pytest.mark.snakemake
def test_second_concurrent_run_is_refused_and_a_killed_runs_lock_is_cleared(tmp_path):
    workdir = fresh_clone(str(tmp_path))
    first = subprocess.Popen(
        snakemake_command("--configfile", "demo/config.yaml", "--cores", "1"), cwd=workdir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    locks = os.path.join(workdir, ".snakemake", "locks")
    deadline = time.time() + 120
    while not (os.path.isdir(locks) and os.listdir(locks)):
        assert time.time() < deadline and first.poll() is None
        time.sleep(0.2)
    second = snakemake(workdir, "--configfile", "demo/config.yaml", "--cores", "1", timeout=120)
    assert second.returncode != 0
    assert "cannot be locked" in second.stdout + second.stderr
    assert clear_stale_lock(workdir).startswith("locked by a running Snakemake")
    os.killpg(first.pid, signal.SIGKILL)  # the whole run, as a lost terminal would
    first.wait()
    assert os.listdir(locks)
    assert clear_stale_lock(workdir) == "removed a stale lock left by a killed run"
    dry = snakemake(workdir, "-n", "--configfile", "demo/config.yaml", timeout=120)
    assert dry.returncode == 0, dry.stderr
