"""The workflow with a site's TensorFlow: training jobs started through `training.python`.

The small run of the fault tests (two segments in phase 1, one in phase 2) reaches its
export with the training jobs on TensorFlow 2.16 and 2.18 (the environments of
tests/test_tensorflow_versions.py, as a site's module gives them), and ends where .venv's
2.21 ends: the held-out accuracy and masked-LM loss of both phases within noise of 2.21's.
"""

import glob
import os

import pytest

from bert_pretraining.files import read_json
from bert_pretraining.run_layout import RunLayout
from fault_helpers import CONFIG, PHASE1, PHASE2, RUN, small_config
from test_tensorflow_versions import site_tensorflow_params, version_of
from workflow_helpers import fresh_clone, snakemake, write_yaml

# Kernels and their summation order differ between TensorFlow versions. Measured on the small
# run (2026-12-05): held-out accuracy equal, masked-LM loss within 3e-7 of 2.21's.
ACCURACY_TOLERANCE = 0.005
LOSS_TOLERANCE = 1e-3


def run_small(workdir, python=None):
    """The small run to its export; each phase's eval.json and the training jobs' logs."""
    config = small_config(workdir)
    if python:
        config["training"]["python"] = python
    write_yaml(os.path.join(workdir, CONFIG), config)
    result = snakemake(workdir, "--configfile", CONFIG, "--cores", "2", timeout=1200)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    layout = RunLayout(os.path.join(workdir, "results", RUN))
    assert os.path.exists(os.path.join(layout.export_dir, "hf", "model.safetensors"))
    logs = "".join(open(path).read() for path in sorted(glob.glob(layout.log("pretrain", phase="phase*", step="*"))))
    return {phase: read_json(layout.eval_json(phase)) for phase in (PHASE1, PHASE2)}, logs


@pytest.fixture(scope="module")
def tensorflow_2_21_run(tmp_path_factory):
    return run_small(fresh_clone(str(tmp_path_factory.mktemp("tf221"))))


def module_wrapper(directory, python):
    """A `python3` that runs another interpreter, as a site module's wrapper does.

    CSC's TensorFlow modules are Apptainer containers whose `python3` is such a script
    (`apptainer exec <image> python3 "$@"` in essence); the workflow passes it the script, its
    flags and PYTHONPATH (Apptainer keeps the environment).
    """
    path = os.path.join(directory, "tensorflow-module", "bin", "python3")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write(f'#!/bin/sh\n# What a site module\'s wrapper does: run the Python that has TensorFlow.\nexec {python} "$@"\n')
    os.chmod(path, 0o755)
    return path


@pytest.mark.slow
@pytest.mark.snakemake
@pytest.mark.parametrize("python", site_tensorflow_params(("2.16", "2.18")))
def test_a_short_run_reaches_its_export_with_the_held_out_figures_of_2_21(python, tensorflow_2_21_run, tmp_path):
    version = version_of(python)
    # 2.16 as a virtual environment's interpreter, 2.18 through a module's wrapper script.
    training_python = python if version == "2.16" else module_wrapper(str(tmp_path), python)
    evaluations, logs = run_small(fresh_clone(str(tmp_path / "clone")), training_python)
    assert logs.count(f"TensorFlow {version}.") == 3, logs[-3000:]  # every segment
    assert logs.count("initialised from") == 2, logs[-3000:]  # segments 2 and 3 continue from their predecessor
    reference, _ = tensorflow_2_21_run
    for phase in (PHASE1, PHASE2):
        for metric, tolerance in (("masked_lm_accuracy", ACCURACY_TOLERANCE), ("masked_lm_loss", LOSS_TOLERANCE)):
            ours, theirs = evaluations[phase][metric], reference[phase][metric]
            assert abs(ours - theirs) <= tolerance, (phase, metric, ours, theirs)
