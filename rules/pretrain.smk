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
from bert_pretraining.job_flags import TRAINING_FLAGS
from bert_pretraining.job_resources import check_training_job
from bert_pretraining.plan import find_segment, previous_segment

# A local run trains in one process; a profile gives nodes, tasks_per_node and mpi.
TRAINING_RULE_RESOURCES = {"nodes": 1, "tasks_per_node": 1}
# Ranks of each phase's jobs, refused by the plan when the records cannot feed them.
TRAINING_RANKS = {
    phase.name: refuse_bad_configuration(
        check_training_job,
        SETTINGS,
        phase,
        f"pretrain_{phase.name}",
        rule_resources(f"pretrain_{phase.name}", TRAINING_RULE_RESOURCES),
    )
    for phase in PHASES
}


def segment_inputs_for(phase):
    def segment_inputs(wildcards):
        segment = find_segment(SEGMENTS, phase.name, int(wildcards.step))
        # The sidecar stands for the record files: it is made after all of
        # them, and training checks that every file it lists exists. Listing
        # thousands of shards per segment would slow down every dry run.
        inputs = {
            "bert_config": f"{RESULTS}/bert_config.json",
            "sidecar": f"{records_dir(phase.max_seq_length)}/records.json",
        }
        previous = previous_segment(SEGMENTS, segment)
        if previous is not None:
            files = checkpoint_files(previous.phase, previous.end_step)
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
        init = input.previous_index[: -len(".index")] if "previous_index" in input.keys() else ""
        flags = {
            "bert_config_file": input.bert_config,
            "input_file": f"{records_dir(phase.max_seq_length)}/shard_*.tfrecord",
            "records_sidecar": input.sidecar,
            "output_dir": f"{RESULTS}/{phase.name}",
            "init_checkpoint": init,
            "init_from": SETTINGS.init_from.directory if "source" in input.keys() else "",
            "start_step": segment.start_step,
            "end_step": segment.end_step,
            "run_last_step": RUN_LAST_STEP,
            **flag_values(TRAINING_FLAGS, SETTINGS, phase),
        }
        return format_flags(flags)

    return segment_flags


def rank_launcher(wildcards, resources):
    """srun with the job's geometry when the profile gives the rule an `mpi` launcher.

    The SLURM executor runs a multi-node job's shell once, on the first node;
    srun must be told the geometry explicitly (a bare srun starts one task per
    node). --kill-on-bad-exit ends every rank when one dies, so a lost rank
    fails the job at once instead of hanging until the time limit.
    """
    mpi = getattr(resources, "mpi", None)
    if not mpi:
        return ""
    return (
        f"{mpi} --nodes={resources.nodes} --ntasks-per-node={resources.tasks_per_node}"
        f" --cpus-per-task={resources.cpus_per_task} --kill-on-bad-exit=1"
    )


for _phase in PHASES:

    rule:
        name:
            f"check_{_phase.name}"
        localrule: True
        # Deterministic: what fails now fails again; the profile's retries are for the training jobs.
        retries: 0
        input:
            unpack(segment_inputs_for(_phase)),
        output:
            temp(f"{RESULTS}/{_phase.name}/.checked-{{step}}"),
        wildcard_constraints:
            step="|".join(str(s.end_step) for s in phase_segments(_phase.name)),
        params:
            flags=segment_flags_for(_phase),
            ranks=TRAINING_RANKS[_phase.name],
        log:
            f"{LOGS}/{_phase.name}/check-{{step}}.log",
        benchmark:
            f"{BENCHMARKS}/{_phase.name}/check-{{step}}.tsv"
        shell:
            "{TRAINING_PYTHON} {SCRIPTS}/run_pretraining.py {params.flags} --check_only={params.ranks}"
            " > {log:q} 2>&1 && touch {output:q}"

    rule:
        name:
            f"pretrain_{_phase.name}"
        input:
            unpack(segment_inputs_for(_phase)),
            checked=f"{RESULTS}/{_phase.name}/.checked-{{step}}",
        output:
            index=protected(f"{RESULTS}/{_phase.name}/model.ckpt-{{step}}.index"),
            data=protected(f"{RESULTS}/{_phase.name}/model.ckpt-{{step}}.data-00000-of-00001"),
        wildcard_constraints:
            step="|".join(str(s.end_step) for s in phase_segments(_phase.name)),
        params:
            flags=segment_flags_for(_phase),
            launcher=rank_launcher,
        log:
            f"{LOGS}/{_phase.name}/segment-{{step}}.log",
        benchmark:
            f"{BENCHMARKS}/{_phase.name}/segment-{{step}}.tsv"
        # All local cores when run locally; under SLURM the profile sets the geometry.
        threads: workflow.resource_settings.cores or 1
        resources:
            **TRAINING_RULE_RESOURCES,
            cpus_per_task=lambda wildcards, threads: threads,
        shell:
            "{params.launcher} {TRAINING_PYTHON} {SCRIPTS}/run_pretraining.py {params.flags} >> {log:q} 2>&1"
