# Helpers shared by the rules: the validated config, the plan, file names.
import json
import os
import shlex
import sys
from functools import partial
from pathlib import Path

from snakemake.utils import validate

# The package is importable without installation at dry-run time: only its
# config and plan modules are used here, and they need nothing but the stdlib.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from bert_pretraining.config import (
    check_config,
    corpus_files,
    resolved_phases,
    training_plan,
    training_python,
)
from bert_pretraining.errors import ConfigError

validate(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
try:
    check_config(config)
except ConfigError as error:
    raise WorkflowError(f"invalid configuration: {error}") from None

# Outputs are shared with the project group (HPC project directories), never world-writable.
os.umask(int(config["umask"], 8))

# Jobs run the interpreter that runs Snakemake, so a virtual environment or a
# site module that provides Snakemake also provides the package and TensorFlow.
PYTHON = shlex.quote(sys.executable)
# Training may run another interpreter (training.python: a site module or a
# venv with Horovod); the workflow's own package goes on its PYTHONPATH.
SRC = Path(workflow.basedir) / "src"
TRAINING_PYTHON = (
    f"env PYTHONPATH={shlex.quote(str(SRC))}${{PYTHONPATH:+:$PYTHONPATH}} {shlex.quote(training_python(config))}"
    if training_python(config)
    else PYTHON
)
SCRIPTS = Path(workflow.basedir) / "workflow/scripts"
RESULTS = f"{config['results_dir']}/{config['run_name']}"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"

SHARDS = [f"shard_{index:05d}" for index in range(config["corpus"]["num_shards"])]
PHASES = resolved_phases(config)
PHASES_BY_NAME = {phase["name"]: phase for phase in PHASES}
SEQ_LENGTHS = [phase["max_seq_length"] for phase in PHASES]
SEGMENTS = training_plan(config)
RUN_LAST_STEP = SEGMENTS[-1].end_step


wildcard_constraints:
    part="shard_[0-9]+|heldout",
    seq="[0-9]+",


def checkpoint_files(phase_name, step):
    """The two files of checkpoint model.ckpt-<step> in a phase directory."""
    prefix = f"{RESULTS}/{phase_name}/model.ckpt-{step}"
    return {"index": f"{prefix}.index", "data": f"{prefix}.data-00000-of-00001"}


def phase_segments(phase_name):
    return [segment for segment in SEGMENTS if segment.phase == phase_name]


def phase_final_checkpoint(phase_name):
    return checkpoint_files(phase_name, phase_segments(phase_name)[-1].end_step)


def records_dir(seq):
    return f"{RESULTS}/records/seq{seq}"


def max_predictions_for(seq):
    for phase in PHASES:
        if phase["max_seq_length"] == int(seq):
            return phase["max_predictions_per_seq"]
    raise ValueError(f"no phase has max_seq_length {seq}")


def quoted(value):
    """Quote a config value for a shell command (paths may hold spaces)."""
    return shlex.quote(str(value))


def final_targets():
    targets = [f"{RESULTS}/{phase['name']}/eval.json" for phase in PHASES]
    report_files = [
        f"{RESULTS}/report/{name}"
        for name in (
            "training_curves.svg", "learning_rate.svg", "throughput.svg", "records.svg",
            "segments.html", "evaluation.html", "records.html", "jobs.html",
        )
    ]
    return targets + [f"{RESULTS}/export"] + report_files
