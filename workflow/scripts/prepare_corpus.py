#!/usr/bin/env python3
"""Prepare one corpus file: read its format, normalise, split into sentences, filter.

    prepare_corpus.py --input=FILE [--format=... --language=fi ...] --output=TEXT --statistics=JSON

Writes TEXT in BERT's format (one sentence per line, a blank line after each
document) and the file's statistics. The flags are the corpus settings of
the preparation (config.schema.yaml's x-jobs: prepare).
"""

import argparse
import logging

from bert_pretraining.errors import run_main
from bert_pretraining.job_flags import add_job_flags, job_settings_from_args
from bert_pretraining.prepare import prepare_file
from bert_pretraining.settings import corpus_settings


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="one corpus file")
    add_job_flags(parser, "prepare")  # the corpus settings of the preparation (config.schema.yaml's corpus)
    parser.add_argument("--output", required=True, help="the prepared BERT-format text")
    parser.add_argument("--statistics", required=True, help="the file's statistics (JSON)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    corpus = corpus_settings({**job_settings_from_args("prepare", args), "files": [args.input]})
    prepare_file(args.input, corpus, args.output, args.statistics)
    return 0


if __name__ == "__main__":
    run_main(main)
