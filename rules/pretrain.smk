# Training segments: one rule per phase, one job per segment. A segment's
# input is the previous segment's final checkpoint, its output its own final
# checkpoint, so the DAG is the training plan. Intermediate checkpoints are
# not declared outputs: Snakemake never deletes them, and a rerun of a failed
# segment resumes from the newest one. Final checkpoints are protected:
# Snakemake refuses to overwrite them instead of retraining weeks of work.
from bert_pretraining.plan import find_segment, previous_segment


def segment_inputs_for(phase_name):
    def segment_inputs(wildcards):
        segment = find_segment(SEGMENTS, phase_name, int(wildcards.step))
        seq = PHASES_BY_NAME[phase_name]["max_seq_length"]
        # The sidecar stands for the record files: it is made after all of
        # them, and training checks that every file it lists exists. Listing
        # thousands of shards per segment would slow down every dry run.
        inputs = {
            "bert_config": f"{RESULTS}/bert_config.json",
            "sidecar": f"{records_dir(seq)}/records.json",
        }
        previous = previous_segment(SEGMENTS, segment)
        if previous is not None:
            files = checkpoint_files(previous.phase, previous.end_step)
            inputs["previous_index"] = files["index"]
            inputs["previous_data"] = files["data"]
        return inputs

    return segment_inputs


def segment_flags_for(phase_name):
    """run_pretraining.py flags (Google's names where Google has one)."""
    phase = PHASES_BY_NAME[phase_name]
    training = config["training"]

    def segment_flags(wildcards, input):
        segment = find_segment(SEGMENTS, phase_name, int(wildcards.step))
        init = input.previous_index[: -len(".index")] if "previous_index" in input.keys() else ""
        flags = {
            "bert_config_file": input.bert_config,
            "input_file": f"{records_dir(phase['max_seq_length'])}/shard_*.tfrecord",
            "records_sidecar": input.sidecar,
            "output_dir": f"{RESULTS}/{phase_name}",
            "init_checkpoint": init,
            "start_step": segment.start_step,
            "end_step": segment.end_step,
            "run_last_step": RUN_LAST_STEP,
            "max_seq_length": phase["max_seq_length"],
            "max_predictions_per_seq": phase["max_predictions_per_seq"],
            "train_batch_size": phase["batch_size_per_gpu"],
            "num_train_steps": phase["num_train_steps"],
            "num_warmup_steps": phase["num_warmup_steps"],
            "learning_rate": training["learning_rate"],
            "scale_learning_rate_by_ranks": training["scale_learning_rate_by_ranks"],
            "precision": training["precision"],
            "use_xla": training["use_xla"],
            "save_checkpoints_steps": training["save_checkpoints_steps"],
            "keep_checkpoints": training["keep_checkpoints"],
            "log_every_steps": training["log_every_steps"],
            "seed": training["seed"],
            "use_next_sentence_prediction": config["model"]["use_next_sentence_prediction"],
            "distribution": training["distribution"],
            "gradient_accumulation_steps": phase.get(
                "gradient_accumulation_steps", training["gradient_accumulation_steps"]
            ),
            "fp16_allreduce": training["fp16_allreduce"],
            "collective_timeout_seconds": training["collective_timeout_seconds"],
            "hang_timeout_seconds": training["hang_timeout_seconds"],
        }
        return " ".join(f"--{name}={quoted(value)}" for name, value in flags.items())

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
            f"pretrain_{_phase['name']}"
        input:
            unpack(segment_inputs_for(_phase["name"])),
        output:
            index=protected(f"{RESULTS}/{_phase['name']}/model.ckpt-{{step}}.index"),
            data=protected(f"{RESULTS}/{_phase['name']}/model.ckpt-{{step}}.data-00000-of-00001"),
        wildcard_constraints:
            step="|".join(str(s.end_step) for s in phase_segments(_phase["name"])),
        params:
            flags=segment_flags_for(_phase["name"]),
            launcher=rank_launcher,
        log:
            f"{LOGS}/{_phase['name']}/segment-{{step}}.log",
        benchmark:
            f"{BENCHMARKS}/{_phase['name']}/segment-{{step}}.tsv"
        # All local cores when run locally; under SLURM the profile sets the geometry.
        threads: workflow.resource_settings.cores or 1
        resources:
            nodes=1,
            tasks_per_node=1,
            cpus_per_task=lambda wildcards, threads: threads,
        shell:
            "{params.launcher} {TRAINING_PYTHON} {SCRIPTS}/run_pretraining.py {params.flags} >> {log:q} 2>&1"
