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
strategy, see bert_pretraining.distributed), by horovodrun, or with
TF_CONFIG; a lone process trains alone. --start_step/--end_step
delimit the segment: the program resumes from the newest checkpoint of the
segment in --output_dir, else from --init_checkpoint, and exits 0 once
model.ckpt-<end_step> is written, 75 if stopped by a signal after saving.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from bert_pretraining.cli import add_bool_flag, setup_logging
from bert_pretraining.errors import run_main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bert_config_file", required=True)
    parser.add_argument("--input_file", required=True, help="record files: comma-separated paths or globs")
    parser.add_argument("--records_sidecar", help="records.json of the records (default: beside the first file)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--init_checkpoint", default="")
    parser.add_argument("--start_step", type=int, default=0)
    parser.add_argument("--end_step", type=int, help="default: --num_train_steps")
    parser.add_argument("--run_last_step", type=int, help="last step of the whole run, for the ETA")
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--max_predictions_per_seq", type=int, default=20)
    parser.add_argument("--train_batch_size", type=int, default=32, help="sequences per rank and step")
    parser.add_argument("--num_train_steps", type=int, default=100000)
    parser.add_argument("--num_warmup_steps", type=int, default=10000)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    add_bool_flag(parser, "scale_learning_rate_by_ranks", False, "multiply the learning rate by the rank count")
    parser.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32")
    add_bool_flag(parser, "use_fp16", False, "Google/NVIDIA spelling of --precision=fp16")
    add_bool_flag(parser, "use_xla", False, "compile the training step with XLA")
    parser.add_argument("--save_checkpoints_steps", type=int, default=1000)
    parser.add_argument("--keep_checkpoints", type=int, default=3)
    parser.add_argument("--log_every_steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=12345)
    add_bool_flag(parser, "use_next_sentence_prediction", True, "train the next-sentence head")
    add_bool_flag(parser, "deterministic", False, "deterministic TensorFlow ops (tests; slower on GPU)")
    parser.add_argument(
        "--distribution", choices=["auto", "horovod", "multiworker", "none"], default="auto",
        help="data-parallel engine when several ranks are started: auto = Horovod if importable, else "
        "TensorFlow's MultiWorkerMirroredStrategy; one process needs none",
    )
    parser.add_argument(
        "--gradient_accumulation_steps", type=int, default=1,
        help="micro-batches of --train_batch_size averaged per optimizer step",
    )
    add_bool_flag(parser, "fp16_allreduce", False, "all-reduce gradients in float16 (halves the traffic)")
    parser.add_argument(
        "--collective_timeout_seconds", type=float, default=1800,
        help="a collective waiting longer fails the job (must exceed the first step's compile and a checkpoint "
        "write); 0 = no limit",
    )
    parser.add_argument(
        "--hang_timeout_seconds", type=float, default=3600,
        help="no step completed for this long: log it and exit 76 so the job is rerun; 0 = no watchdog",
    )
    parser.add_argument(
        "--divergence_patience", type=int, default=3,
        help="stop when the loss is non-finite or exploding for this many log lines in a row",
    )
    args = parser.parse_args(argv)
    if args.use_fp16:
        args.precision = "fp16"
    if args.end_step is None:
        args.end_step = args.num_train_steps
    if args.run_last_step is None:
        args.run_last_step = args.end_step
    return args


def main(argv=None):
    args = parse_args(argv)
    from bert_pretraining.distributed import detect_rank

    setup_logging(detect_rank())
    from bert_pretraining.segment_job import run_segment_job

    return run_segment_job(args)


if __name__ == "__main__":
    sys.exit(run_main(main))
