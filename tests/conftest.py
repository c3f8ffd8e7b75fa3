import os
import subprocess
import sys
import time

import pytest
from hypothesis import settings

# Timing varies on a shared 2-core machine: no per-example deadline.
settings.register_profile("project", deadline=None, max_examples=100)
settings.load_profile("project")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from slurm_fixtures import slurm_cluster  # noqa: E402,F401  (the SLURM test cluster, once per session)
import worker_groups  # noqa: E402
import workflow_helpers  # noqa: E402
from workflow_helpers import DEMO_DAG_CONFIGS, fresh_clone, snakemake, snakemake_command  # noqa: E402
from bert_pretraining.run_layout import RunLayout  # noqa: E402

# What a fixture needs is what every test that takes it needs (pyproject.toml lists the markers).
FIXTURE_MARKERS = {
    "demo_run": ("snakemake", "slow"),
    "slurm_cluster": ("slurm",),
}


def runs_site_tensorflow(item):
    """The test is parametrized with a site TensorFlow's interpreter (.venv-tf215, .venv-tf216, ...)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    values = [part for value in params.values() for part in (value if isinstance(value, tuple) else (value,))]
    return any(isinstance(value, str) and f"{os.sep}.venv-tf" in value for value in values)


def pytest_collection_modifyitems(config, items):
    for item in items:
        needs = [marker for fixture, markers in FIXTURE_MARKERS.items()
                 if fixture in getattr(item, "fixturenames", ()) for marker in markers]
        if runs_site_tensorflow(item):
            needs.append("site_tf")
        for marker in needs:
            if item.get_closest_marker(marker) is None:
                item.add_marker(marker)
        if problem := worker_groups.misplaced(item):
            raise pytest.UsageError(problem)
    if hasattr(config, "workerinput"):  # an xdist worker: its order is the scheduler's
        worker_groups.longest_groups_first(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` (two workers): tests/worker_groups.py's groups, longest first."""
    return worker_groups.make_scheduler(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before the test's fixtures: a fixture that runs Snakemake counts for the test that needs it.
    workflow_helpers.SNAKEMAKE_ALLOWED = item.get_closest_marker("snakemake") is not None


def wait_for(path, process, timeout=900):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, "the workflow ended before " + path + " appeared"
        assert time.time() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.5)


class DemoRun:
    """`make demo`'s workflow at the tests' size (tests/demo_dag.yaml) in a fresh copy, interrupted once on purpose.

    The second phase-1 segment (steps 100-200) is killed with SIGKILL after it
    saved its step-150 checkpoint; the workflow is then simply run again, as a
    user would, and must finish. One run serves both the resume tests and the
    end-to-end tests, which keeps the suite's time down.
    """

    def __init__(self, workdir):
        self.workdir = workdir
        self.run_dir = os.path.join(workdir, "results", "demo")  # results_dir/run_name of tests/demo_dag.yaml
        self.layout = RunLayout(self.run_dir)

    def interrupted_then_completed(self):
        command = snakemake_command("--configfile", *DEMO_DAG_CONFIGS, "--cores", "2")
        first = subprocess.Popen(command, cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(self.layout.checkpoint_files("phase128", 150)["index"], first)
        self.first_segment_mtime = os.stat(self.layout.checkpoint_files("phase128", 100)["index"]).st_mtime_ns
        killed = subprocess.run(["pkill", "-9", "-f", f"{self.workdir}/workflow/scripts/run_pretraining.py .*--end_step=200 "])
        assert killed.returncode == 0, "found no training process of segment 100-200 to kill"
        self.first_output, _ = first.communicate(timeout=600)
        self.first_returncode = first.returncode
        self.killed_segment_finished = os.path.exists(self.layout.checkpoint_files("phase128", 200)["index"])
        self.second = snakemake(self.workdir, "--configfile", *DEMO_DAG_CONFIGS, "--cores", "2", timeout=1500)
        return self


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    workdir = fresh_clone(str(tmp_path_factory.mktemp("demo-clone")))
    run = DemoRun(workdir).interrupted_then_completed()
    assert run.second.returncode == 0, run.second.stdout[-5000:] + run.second.stderr[-10000:]
    return run
