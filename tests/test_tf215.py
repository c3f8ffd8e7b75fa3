"""The model and the training step on TensorFlow 2.15 (Keras 2), the version Horovod builds against.

`make test` creates .venv-tf215; this test runs the model, optimizer and
training tests inside it, so one code path is proven on both 2.15 and 2.21.
"""

import os
import subprocess

import pytest

from workflow_helpers import REPO

TF215_PYTHON = os.path.join(REPO, ".venv-tf215", "bin", "python")


@pytest.mark.tf215
@pytest.mark.skipif(not os.path.exists(TF215_PYTHON), reason="no .venv-tf215 (make test creates it)")
def test_model_and_training_on_tensorflow_2_15():
    version = subprocess.run(
        [TF215_PYTHON, "-c", "import tensorflow as tf; print(tf.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert version.startswith("2.15"), version
    result = subprocess.run(
        [TF215_PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_modeling.py", "tests/test_optimization.py", "tests/test_schedule.py",
         "tests/test_training.py", "tests/test_checkpoints.py"],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "PYTEST_ADDOPTS": ""},
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
