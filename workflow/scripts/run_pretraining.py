"""Train one segment of BERT pretraining (masked LM + next sentence).

Flags follow Google's run_pretraining.py where Google has one
(--bert_config_file, --input_file, --output_dir, --init_checkpoint,
--max_seq_length, --max_predictions_per_seq, --train_batch_size,
--num_train_steps, --num_warmup_steps, --learning_rate,
--save_checkpoints_steps, --use_xla); --train_batch_size is per GPU (per
rank), as in NVIDIA's and the seed's Horovod runs: the global batch is
train_batch_size x ranks x gradient_accumulation_steps, and the learning
rate is not scaled by the rank count unless --scale_learning_rate_by_ranks.
Ranks are started by srun (one per GPU; Horovod or TensorFlow's multi-worker
strategy, see bert_pretraining.distribution), by horovodrun, or with
TF_CONFIG; a lone process trains alone. --start_step/--end_step
delimit the segment: the program resumes from the newest checkpoint of the
segment in --output_dir, else from --init_checkpoint, and exits 0 once
model.ckpt-<end_step> is written, 75 if stopped by a signal after saving.
--init_from starts the run's first segment from a released model's weights.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from bert_pretraining.cli import add_bool_flag, setup_logging
from bert_pretraining.errors import exiting_at_once_on_crash, run_main
from bert_pretraining.job_flags import add_job_flags
from bert_pretraining.settings import default_warmup_steps


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bert_config_file", required=True)
    parser.add_argument("--input_file", required=True, help="record files: comma-separated paths or globs")
    parser.add_argument("--records_sidecar", help="records.json of the records (default: beside the first file)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--init_checkpoint", default="")
    parser.add_argument(
        "--init_from", default="",
        help="a BERT directory (Google's release layout or Transformers') whose weights the run's first segment "
        "starts from, with a fresh optimizer at step 0 (the config key init_from)",
    )
    parser.add_argument("--start_step", type=int, default=0)
    parser.add_argument("--end_step", type=int, help="default: --num_train_steps")
    parser.add_argument("--run_last_step", type=int, help="last step of the whole run, for the ETA")
    # Every setting of the run's config (config.schema.yaml declares its type, default and help).
    add_job_flags(parser, "train", optional=("num_warmup_steps",))
    add_bool_flag(parser, "use_fp16", False, "Google/NVIDIA spelling of --precision=fp16")
    parser.add_argument(
        "--check_only", type=int, metavar="RANKS",
        help="check the flags, records and engine for a job of RANKS ranks, then exit without training",
    )
    args = parser.parse_args(argv)
    if args.use_fp16:
        args.precision = "fp16"
    if args.num_warmup_steps is None:
        args.num_warmup_steps = default_warmup_steps(args.num_train_steps)
    if args.end_step is None:
        args.end_step = args.num_train_steps
    if args.run_last_step is None:
        args.run_last_step = args.end_step
    return args


def main(argv=None):
    args = parse_args(argv)
    from bert_pretraining.topology import detect_rank

    setup_logging(detect_rank())
    from bert_pretraining.segment_job import check_segment_job, run_segment_job

    if args.check_only is not None:
        check_segment_job(args, args.check_only)
        return 0
    # Before TensorFlow is imported: XLA reads TF_XLA_FLAGS once. The run directory holds the phases.
    from bert_pretraining.compile_cache import use_compile_caches

    use_compile_caches(os.path.dirname(os.path.abspath(args.output_dir)))
    from bert_pretraining.inputs import expand_input_files, naming_damaged_records
    from bert_pretraining.topology import detect_topology

    with exiting_at_once_on_crash(enabled=detect_topology().size > 1):
        with naming_damaged_records(expand_input_files(args.input_file)):
            return run_segment_job(args)


if __name__ == "__main__":
    sys.exit(run_main(main))
