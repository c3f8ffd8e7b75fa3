"""From run_pretraining.py's flags to a checked SegmentSettings, then train.

Everything that can be checked cheaply is checked here, before TensorFlow
builds a model: the records' sidecar against the sequence length and
predictions, the step range, the files.
"""

from __future__ import annotations

import logging
import os

from .bert_config import ARCHITECTURE_KEYS, BertConfig
from .errors import ConfigError, RecordsError
from .job_flags import job_settings_from_args
from .record_shares import records_per_file
from .records_sidecar import check_record_files, check_records_sidecar, read_records_sidecar
from .run_inputs import training_inputs
from .run_layout import RECORDS_SIDECAR

log = logging.getLogger(__name__)


def records_sidecar_path(args, files: list[str]) -> str:
    """--records_sidecar, or the records.json beside the record files."""
    return args.records_sidecar or os.path.join(os.path.dirname(files[0]), RECORDS_SIDECAR)


def settings_from_args(args):
    from .inputs import expand_input_files
    from .training import SegmentSettings

    if args.gradient_accumulation_steps < 1:
        raise ConfigError(f"--gradient_accumulation_steps is {args.gradient_accumulation_steps}; expected 1 or more")
    if args.end_step <= args.start_step:
        raise ConfigError(f"--end_step {args.end_step} must be after --start_step {args.start_step}")
    if args.end_step > args.num_train_steps and args.run_last_step < args.end_step:
        raise ConfigError(f"--run_last_step {args.run_last_step} is before --end_step {args.end_step}")
    files = expand_input_files(args.input_file)
    sidecar_path = records_sidecar_path(args, files)
    if not os.path.isfile(sidecar_path):
        raise RecordsError(
            f"{sidecar_path} does not exist; expected the records sidecar written with the records "
            "(pass --records_sidecar)"
        )
    check_records_sidecar(
        sidecar_path, max_seq_length=args.max_seq_length, max_predictions_per_seq=args.max_predictions_per_seq
    )
    sidecar = read_records_sidecar(sidecar_path)
    bert_config = BertConfig.from_json_file(args.bert_config_file)
    if args.max_seq_length > bert_config.max_position_embeddings:
        raise ConfigError(
            f"--max_seq_length {args.max_seq_length} exceeds max_position_embeddings "
            f"{bert_config.max_position_embeddings} in {args.bert_config_file}"
        )
    init_from = check_init_from(args, bert_config) if args.init_from else None
    return SegmentSettings(
        bert_config=bert_config,
        init_from=init_from,
        input_files=files,
        records_per_file=records_per_file(sidecar),
        inputs=training_inputs(args.bert_config_file, sidecar),
        output_dir=args.output_dir,
        init_checkpoint=args.init_checkpoint or None,
        start_step=args.start_step,
        end_step=args.end_step,
        run_last_step=args.run_last_step,
        **job_settings_from_args("train", args),
    )


def check_init_from(args, bert_config: BertConfig):
    """The source model of --init_from, checked against the run's bert_config.json and model."""
    from .source_model import check_weights, inspect_source

    if args.start_step != 0:
        raise ConfigError(f"--init_from is for the run's first segment; this one starts at step {args.start_step}")
    source = inspect_source(args.init_from, "--init_from")
    differ = [
        f"{key} {getattr(source.config, key)!r} vs {getattr(bert_config, key)!r}"
        for key in ("vocab_size", *ARCHITECTURE_KEYS)
        if getattr(source.config, key) != getattr(bert_config, key)
    ]
    if differ:
        raise ConfigError(
            f"--init_from {args.init_from} does not describe the model of {args.bert_config_file}: "
            f"{'; '.join(differ)} (source vs run); expected the run's bert_config.json to be made from the source"
        )
    for head in check_weights(source, args.use_next_sentence_prediction, "--init_from"):
        log.info("--init_from %s has no %s: it is initialised fresh", args.init_from, head)
    return source


def check_segment_job(args, num_ranks: int) -> None:
    """Everything the job with ``num_ranks`` ranks would refuse before training, without training.

    The workflow runs this on the login node before it submits a segment
    (rule check_<phase>), so a deterministic error fails once, in seconds,
    instead of once per retry after a wait in the GPU queue.
    """
    from .distribution import choose_engine
    from .topology import Topology
    from .record_shares import check_rank_shares

    settings = settings_from_args(args)
    # Every frame of every record file a segment and the evaluation will read: tf.data may read a cut file silently.
    check_record_files(records_sidecar_path(args, settings.input_files))
    check_rank_shares(settings.input_files, settings.records_per_file, num_ranks, settings.train_batch_size)
    engine = choose_engine(settings.distribution, Topology(launcher="slurm", size=num_ranks))
    log.info(
        "segment %d-%d: the job's checks pass for %d rank(s) (engine %s), global batch %d",
        settings.start_step, settings.end_step, num_ranks, engine,
        settings.train_batch_size * settings.gradient_accumulation_steps * num_ranks,
    )


def run_segment_job(args) -> int:
    settings = settings_from_args(args)
    import tensorflow as tf

    from .distribution import create_replica
    from .training import train_segment

    # Before anything initialises TensorFlow's devices: joins the other ranks
    # (if any) and pins this rank's GPU.
    replica = create_replica(
        settings.distribution,
        fp16_allreduce=settings.fp16_allreduce,
        timeout_seconds=settings.collective_timeout_seconds,
    )
    if settings.fp16_allreduce and replica.size > 1 and settings.precision != "fp16":
        log.warning("--fp16_allreduce without --precision=fp16: small unscaled gradients may underflow in float16")
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    if settings.precision != "fp32" and not tf.config.list_physical_devices("GPU"):
        log.warning("precision %s on a machine without a GPU: correct but slow", settings.precision)
    os.makedirs(settings.output_dir, exist_ok=True)
    log.info(
        "TensorFlow %s, rank %d of %d (%s), %s, XLA %s, batch %d per rank x %d micro-batches = global batch %d",
        tf.__version__, replica.rank, replica.size, replica.engine, settings.precision,
        "on" if settings.use_xla else "off", settings.train_batch_size, settings.gradient_accumulation_steps,
        settings.train_batch_size * settings.gradient_accumulation_steps * replica.size,
    )
    log.info(
        "Compile caches (kept between segments; README, \"For your cluster\"): TF_XLA_FLAGS=%s CUDA_CACHE_PATH=%s",
        os.environ.get("TF_XLA_FLAGS", ""), os.environ.get("CUDA_CACHE_PATH", ""),
    )
    return train_segment(settings, replica)
