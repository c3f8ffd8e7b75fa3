import os
import sys

import pytest
from hypothesis import settings

# Timing varies on a shared 2-core machine: no per-example deadline.
settings.register_profile("project", deadline=None, max_examples=100)
settings.load_profile("project")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workflow_helpers import fresh_clone, snakemake  # noqa: E402


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """`make demo`'s workflow, run once per test session in a fresh copy of the repository."""
    workdir = fresh_clone(str(tmp_path_factory.mktemp("demo-clone")))
    result = snakemake(workdir, "--configfile", "demo/config.yaml", "--cores", "2", timeout=1500)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-10000:]
    return workdir, result
