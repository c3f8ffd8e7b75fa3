# Training segments: one rule per phase, one job per segment. A segment's
# input is the previous segment's final checkpoint, its output its own final
# checkpoint, so the DAG is the training plan. Intermediate checkpoints are
# not declared outputs: Snakemake never deletes them, and a rerun of a failed
# segment resumes from the newest one. Final checkpoints are protected:
# Snakemake refuses to overwrite them instead of retraining weeks of work.
# Before a segment is submitted, check_<phase> runs the training program's
# own checks on the login node for the job's rank count: an error that every
# attempt would hit (records that do not fit the phase, a batch larger than a
# rank's records, no engine for the ranks) fails once, in seconds.
# The segments' inputs, flags and srun launcher are in rules/common.smk.
from bert_pretraining.job_resources import (
    TRAINING_RULE_RESOURCES,
    check_training_job,
    training_rule,
)
from bert_pretraining.status import run_input_changes

# A run is bound to its inputs: its checkpoints record what they were trained
# on (vocabulary, model config, records), and the corpus files are compared
# by content with what the preparation read. When they changed, nothing runs:
# the data stages would remake the vocabulary and records under weights
# trained on the old ones (as root, write protection does not stop that).
if workflow.is_main_process and (_changes := run_input_changes(SETTINGS)):
    raise WorkflowError(f"run {SETTINGS.run_name}: {_changes.describe()}")

# Ranks of each phase's jobs, refused by the plan when the records cannot feed them.
TRAINING_RANKS = {
    phase.name: refuse_bad_configuration(
        check_training_job,
        SETTINGS,
        phase,
        training_rule(phase.name),
        rule_resources(training_rule(phase.name), TRAINING_RULE_RESOURCES),
        # In a cluster job's own parse, existing records must not fail a job of another rule.
        check_records=workflow.is_main_process,
    )
    for phase in PHASES
}


for _phase in PHASES:

    rule:
        name:
            f"check_{_phase.name}"
        input:
            unpack(segment_inputs_for(_phase)),
        output:
            temp(LAYOUT.check_marker(_phase.name, "{step}")),
        log:
            LAYOUT.log("check", phase=_phase.name, step="{step}"),
        benchmark:
            LAYOUT.benchmark("check", phase=_phase.name, step="{step}")
        wildcard_constraints:
            step="|".join(str(s.end_step) for s in phase_segments(_phase.name)),
        # Deterministic: what fails now fails again; the profile's retries are for the training jobs.
        retries: 0
        localrule: True
        params:
            flags=segment_flags_for(_phase),
            ranks=TRAINING_RANKS[_phase.name],
        shell:
            "{TRAINING_PYTHON} {SCRIPTS}/run_pretraining.py {params.flags} --check_only={params.ranks}"
            " > {log:q} 2>&1 && touch {output:q}"

    rule:
        name:
            training_rule(_phase.name)
        input:
            unpack(segment_inputs_for(_phase)),
            checked=LAYOUT.check_marker(_phase.name, "{step}"),
        output:
            index=protected(LAYOUT.checkpoint_files(_phase.name, "{step}")["index"]),
            data=protected(LAYOUT.checkpoint_files(_phase.name, "{step}")["data"]),
        log:
            LAYOUT.log("pretrain", phase=_phase.name, step="{step}"),
        benchmark:
            LAYOUT.benchmark("pretrain", phase=_phase.name, step="{step}")
        wildcard_constraints:
            step="|".join(str(s.end_step) for s in phase_segments(_phase.name)),
        # All local cores when run locally; under SLURM the profile sets the geometry.
        threads: workflow.resource_settings.cores or 1
        resources:
            **TRAINING_RULE_RESOURCES,
            cpus_per_task=lambda wildcards, threads: threads,
        params:
            flags=segment_flags_for(_phase),
            launcher=rank_launcher,
        shell:
            "{params.launcher} {TRAINING_PYTHON} {SCRIPTS}/run_pretraining.py {params.flags} >> {log:q} 2>&1"
