# Helpers shared by the rules: the run's settings, the plan; every path under
# the run directory is LAYOUT's (src/bert_pretraining/run_layout.py).
import json
import os
import shlex
import sys
from pathlib import Path

# The package is on sys.path (rules/config.smk); nothing imported here loads
# TensorFlow (only checking the weights of a TF-checkpoint source, init_from,
# does, in the main process).
from bert_pretraining.errors import ConfigError
from bert_pretraining.job_resources import (
    check_environment_references,
    combine_resources,
)
from bert_pretraining.job_flags import format_flags, job_values
from bert_pretraining.plan import find_segment, previous_segment
from bert_pretraining.run_layout import (
    HELDOUT_PART,
    PART_PATTERN,
    shard_index,
    shard_part,
)
from bert_pretraining.settings import (
    corpus_files,
    init_from_report,
    settings_from_config,
    training_python,
)
from snakemake.logging import logger


def refuse_bad_configuration(check, *args, **kwargs):
    """Run a check of the package; its ConfigError stops the parse like any invalid config."""
    try:
        return check(*args, **kwargs)
    except ConfigError as error:
        raise WorkflowError(f"invalid configuration: {error}") from None


# The one loader: Snakemake has merged config.yaml and every --configfile
# into `config`; it is validated, completed with the schema's defaults and
# checked here, and the rules read SETTINGS only.
SETTINGS = refuse_bad_configuration(settings_from_config, config)
# Every path under results/<run_name>/ (wildcards are passed as their text, "{seq}").
LAYOUT = SETTINGS.layout

# A run that continues a released model says what it took from it, and its
# weights are checked against the run's model before anything is submitted.
if workflow.is_main_process:
    for _line in refuse_bad_configuration(init_from_report, SETTINGS):
        logger.info(f"init_from: {_line}")

# Outputs are shared with the project group (HPC project directories), never world-writable.
os.umask(int(SETTINGS.umask, 8))

# Jobs run the interpreter that runs Snakemake, so a virtual environment or a
# site module that provides Snakemake also provides the package and TensorFlow.
#
# Lints left on purpose (`make lint` accepts exactly these):
# * "Specify a conda environment or container for each rule": the software is
#   the environment that runs Snakemake (pyproject.toml; an HPC site module or
#   a venv), not a per-rule conda environment that would duplicate it.
# * "Shell command directly uses variable PYTHON / TRAINING_PYTHON / SCRIPTS":
#   these say where the workflow runs, not what a job computes. As params they
#   would enter each job's recorded parameters, and a moved clone or another
#   interpreter would make every job (and protected final checkpoints) look
#   changed to --rerun-triggers params.
PYTHON = shlex.quote(sys.executable)
# Training may run another interpreter (training.python: a site module or a
# venv with Horovod); the workflow's own package goes on its PYTHONPATH.
SRC = Path(workflow.basedir) / "src"
TRAINING_PYTHON = (
    f"env PYTHONPATH={shlex.quote(str(SRC))}${{PYTHONPATH:+:$PYTHONPATH}} {shlex.quote(training_python(SETTINGS))}"
    if training_python(SETTINGS)
    else PYTHON
)
SCRIPTS = Path(workflow.basedir) / "workflow/scripts"

SHARDS = [shard_part(index) for index in range(SETTINGS.corpus.num_shards)]
PHASES = SETTINGS.phases
SEQ_LENGTHS = [phase.max_seq_length for phase in PHASES]
SEGMENTS = SETTINGS.segments
RUN_LAST_STEP = SEGMENTS[-1].end_step


wildcard_constraints:
    part=PART_PATTERN,
    index="[0-9]{5}",
    seq="[0-9]+",


def raw_resources(resources):
    """Resources as written in the profile or on the command line (Snakemake evaluates them per job)."""
    return {
        name: getattr(value, "raw", value) for name, value in (resources or {}).items()
    }


def rule_resources(rule_name, declared):
    """A rule's resources before evaluation: the defaults, the rule's own, then --set-resources."""
    settings = workflow.resource_settings
    return combine_resources(
        raw_resources(settings.default_resources),
        declared,
        raw_resources(settings.overwrite_resources.get(rule_name)),
    )


# Values such as slurm_account: $SBATCH_ACCOUNT are expanded when a job is
# submitted; an unset variable would reach sbatch as text. Jobs re-parse this
# file in their own environment: the main process checks for them.
if workflow.is_main_process:
    refuse_bad_configuration(
        check_environment_references,
        "--default-resources",
        raw_resources(workflow.resource_settings.default_resources),
    )
    for (
        _rule_name,
        _resources,
    ) in workflow.resource_settings.overwrite_resources.items():
        refuse_bad_configuration(
            check_environment_references,
            f"--set-resources of {_rule_name}",
            raw_resources(_resources),
        )


def phase_segments(phase_name):
    return [segment for segment in SEGMENTS if segment.phase == phase_name]


def phase_final_checkpoint(phase_name):
    return LAYOUT.checkpoint_files(phase_name, phase_segments(phase_name)[-1].end_step)


def quoted(value):
    """Quote a config value for a shell command (paths may hold spaces)."""
    return shlex.quote(str(value))


def final_targets():
    evaluations = [LAYOUT.eval_json(phase.name) for phase in PHASES]
    return evaluations + [LAYOUT.export_dir] + LAYOUT.report_files


# --- corpus, vocabulary and records (rules/vocab.smk, rules/records.smk) ---


def vocabulary_source(wildcards, input):
    if SETTINGS.init_from:
        return f"--from_model={quoted(SETTINGS.init_from.directory)}"
    if SETTINGS.vocabulary.file:
        return f"--given_vocab={quoted(input.given)}"
    return f"--input {' '.join(quoted(path) for path in input.shards)}"


def records_seed(wildcards):
    """Each part has its own seed, so records do not depend on job scheduling."""
    base = SETTINGS.records.random_seed
    if wildcards.part == HELDOUT_PART:
        return base + len(SHARDS)
    return base + shard_index(wildcards.part)


def records_flags(wildcards):
    """create_pretraining_data.py's settings for one part and sequence length."""
    phase = SETTINGS.phase_for_length(wildcards.seq)
    return format_flags(
        {
            **job_values("records", SETTINGS, phase),
            "random_seed": records_seed(wildcards),
        }
    )


# --- training segments (rules/pretrain.smk) ---


def segment_inputs_for(phase):
    def segment_inputs(wildcards):
        segment = find_segment(SEGMENTS, phase.name, int(wildcards.step))
        # The sidecar stands for the record files: it is made after all of
        # them, and training checks that every file it lists exists. Listing
        # thousands of shards per segment would slow down every dry run.
        inputs = {
            "bert_config": LAYOUT.bert_config,
            "sidecar": LAYOUT.records_sidecar(phase.max_seq_length),
        }
        previous = previous_segment(SEGMENTS, segment)
        if previous is not None:
            files = LAYOUT.checkpoint_files(previous.phase, previous.end_step)
            inputs["previous_index"] = files["index"]
            inputs["previous_data"] = files["data"]
        elif SETTINGS.init_from:
            inputs["source"] = SETTINGS.init_from.files
        return inputs

    return segment_inputs


def segment_flags_for(phase):
    """run_pretraining.py's flags: the segment's files and steps, then the settings (job_flags)."""

    def segment_flags(wildcards, input):
        segment = find_segment(SEGMENTS, phase.name, int(wildcards.step))
        init = (
            input.previous_index[: -len(".index")]
            if "previous_index" in input.keys()
            else ""
        )
        flags = {
            "bert_config_file": input.bert_config,
            "input_file": LAYOUT.training_records(phase.max_seq_length),
            "records_sidecar": input.sidecar,
            "output_dir": LAYOUT.phase_dir(phase.name),
            "init_checkpoint": init,
            "init_from": (
                SETTINGS.init_from.directory if "source" in input.keys() else ""
            ),
            "start_step": segment.start_step,
            "end_step": segment.end_step,
            "run_last_step": RUN_LAST_STEP,
            **job_values("train", SETTINGS, phase),
        }
        return format_flags(flags)

    return segment_flags


def rank_launcher(wildcards, resources):
    """srun with the job's geometry when the profile gives the rule an `mpi` launcher.

    The SLURM executor runs a multi-node job's shell once, on the first node;
    srun must be told the geometry explicitly (a bare srun starts one task per
    node). --kill-on-bad-exit ends every rank when one dies, so a lost rank
    fails the job at once instead of hanging until the time limit. A profile's
    `srun_extra` resource adds the site's own srun options (LUMI's CPU binding).
    """
    mpi = getattr(resources, "mpi", None)
    if not mpi:
        return ""
    extra = getattr(resources, "srun_extra", "")
    return (
        f"{mpi} --nodes={resources.nodes} --ntasks-per-node={resources.tasks_per_node}"
        f" --cpus-per-task={resources.cpus_per_task} --kill-on-bad-exit=1"
        + (f" {extra}" if extra else "")
    )


# --- damaged final checkpoints (checkpoints.recover_checkpoint) ---
# Before the DAG is built, a segment's final checkpoint that was cut (a full
# disk, a crashed file server) is repaired from its .segment-ends/ copy, with
# its modification time, so Snakemake reruns nothing; without an intact copy it
# is moved into .damaged/, so Snakemake reruns that segment. Sizes only: no
# hashing of gigabytes at every start (the jobs that read a checkpoint hash it).
if workflow.is_main_process:
    from bert_pretraining.checkpoints import recover_checkpoint

    for _segment in SEGMENTS:
        recover_checkpoint(
            LAYOUT.checkpoint(_segment.phase, _segment.end_step), hash_files=False
        )


# --- damaged record files (records_sidecar.damaged_records_in) ---
# The record files are inputs of no rule (records.json stands for them), so
# Snakemake does not see one that was cut or deleted: the dry run names it.
# Sizes only, against records.json: no reading of gigabytes at every start.
if workflow.is_main_process:
    from bert_pretraining.records_sidecar import damaged_records_in

    for _problem in damaged_records_in(
        LAYOUT.records_sidecar(seq) for seq in SEQ_LENGTHS
    ):
        logger.warning(f"WARNING: {_problem}")
