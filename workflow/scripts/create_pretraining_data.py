#!/usr/bin/env python3
"""Create masked-LM / next-sentence TFRecords for BERT, without TensorFlow.

A drop-in for google-research/bert's create_pretraining_data.py: the same
flags (absl style: --flag=value, --flag value, --bool_flag, --nobool_flag,
--bool_flag=true/false), the same algorithm and feature layout. Added:
--stats_file, a JSON of counts for the records sidecar.

    create_pretraining_data.py --input_file=shard_00000.txt \
        --output_file=shard_00000.tfrecord --vocab_file=vocab.txt \
        --do_lower_case=false --max_seq_length=128 --max_predictions_per_seq=20 \
        --random_seed=12345 --dupe_factor=10 --masked_lm_prob=0.15 \
        --short_seq_prob=0.1 --stats_file=shard_00000.json

A sentence longer than the sequence is cut by truncate_seq_pair (from the
front or the back at random), as in Google's script; the stats count it.
"""

import argparse
import logging
import sys

from bert_pretraining.errors import run_main
from bert_pretraining.corpus import expand_corpus_files
from bert_pretraining.instances import InstanceOptions
from bert_pretraining.job_flags import add_job_flags, job_settings_from_args
from bert_pretraining.schema import job_settings
from bert_pretraining.pretraining_data import create_pretraining_data

log = logging.getLogger("create_pretraining_data")

BOOL_FLAGS = tuple(setting.flag for setting in job_settings("records") if setting.schema["type"] == "boolean")
ALL_FLAGS = ("input_file", "output_file", "vocab_file", "stats_file", *(setting.flag for setting in job_settings("records")))


def absl_to_argparse(argv):
    """Rewrite absl-only spellings: -flag for --flag, --noflag for --flag=false."""
    result = []
    for arg in argv:
        if arg.startswith("-") and not arg.startswith("--") and arg[1:].split("=")[0] in ALL_FLAGS + tuple(
            "no" + name for name in BOOL_FLAGS
        ):
            arg = "-" + arg
        name = arg[2:] if arg.startswith("--") else None
        if name and name.startswith("no") and name[2:] in BOOL_FLAGS:
            arg = f"--{name[2:]}=false"
        result.append(arg)
    return result


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--input_file", required=True,
                        help="input raw text file (or comma-separated list of files; globs allowed)")
    parser.add_argument("--output_file", required=True,
                        help="output TF example file (or comma-separated list of files, written round-robin)")
    parser.add_argument("--vocab_file", required=True, help="the vocabulary file the BERT model is trained on")
    # The settings of the records (the schema's x-jobs: records), with Google's defaults (job_flags.HAND_DEFAULTS).
    add_job_flags(parser, "records")
    parser.add_argument("--stats_file", help="write a JSON of counts and flags here (for the records sidecar)")
    return parser.parse_args(absl_to_argparse(argv))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    values = job_settings_from_args("records", args)
    options = InstanceOptions(**{field: values[field] for field in InstanceOptions.__dataclass_fields__})
    input_files = expand_corpus_files(args.input_file, "--input_file")
    output_files = [path for path in args.output_file.split(",") if path]
    log.info("reading %s", ", ".join(input_files))
    create_pretraining_data(
        input_files,
        output_files,
        args.vocab_file,
        options,
        do_lower_case=args.do_lower_case,
        random_seed=args.random_seed,
        stats_file=args.stats_file,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
