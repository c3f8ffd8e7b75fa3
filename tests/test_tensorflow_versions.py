"""One code path on the TensorFlow versions that sites ship: 2.15, 2.16, 2.18 beside .venv's 2.21.

`make test` creates one environment per version (the Makefile's SITE_TENSORFLOWS), as a site's
module would give it: its own TensorFlow, this package and its dependencies. Per version:

* the model, optimizer, schedule, checkpoint and training tests run inside it, among them a
  crash and a segment boundary that resume bit-identically (tests/test_training.py);
* the small workflow of the fault tests reaches its export with the training jobs started
  through `training.python` (tests/test_tensorflow_versions_workflow.py).
"""

import os
import subprocess

import pytest

from workflow_helpers import REPO

SITE_TENSORFLOWS = {"2.15": ".venv-tf215", "2.16": ".venv-tf216", "2.18": ".venv-tf218"}


def site_python(version: str) -> str:
    return os.path.join(REPO, SITE_TENSORFLOWS[version], "bin", "python")


def version_of(python: str) -> str:
    """"2.16" for .venv-tf216's interpreter."""
    return next(version for version in SITE_TENSORFLOWS if site_python(version) == python)


def site_tensorflow_params(versions=tuple(SITE_TENSORFLOWS)):
    """One parameter per version: the interpreter of its environment, skipped where it is missing."""
    return [
        pytest.param(
            site_python(version), id=f"tf{version}",
            marks=pytest.mark.skipif(not os.path.exists(site_python(version)),
                                     reason=f"no {SITE_TENSORFLOWS[version]} (make site-tensorflows creates it)"),
        )
        for version in versions
    ]


def tensorflow_version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import tensorflow as tf; print(tf.__version__)"], capture_output=True, text=True, check=True,
    ).stdout.strip()


@pytest.mark.parametrize("python", site_tensorflow_params())
def test_model_training_and_bit_identical_resume(python):
    version = version_of(python)
    assert tensorflow_version(python).startswith(version + "."), python
    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_modeling.py", "tests/test_optimization.py", "tests/test_schedule.py",
         "tests/test_training.py", "tests/test_checkpoints.py"],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "PYTEST_ADDOPTS": ""},
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert " passed" in result.stdout.splitlines()[-1], result.stdout[-2000:]
