#!/usr/bin/env python3
"""Prepare one corpus file: read its format, normalise, split into sentences, filter.

    prepare_corpus.py --input FILE --corpus JSON --output TEXT --statistics JSON

Writes TEXT in BERT's format (one sentence per line, a blank line after each
document) and the file's statistics. JSON holds the corpus settings of the
preparation (bert_pretraining.prepare.preparation_settings).
"""

import argparse
import json
import logging

from bert_pretraining.errors import run_main
from bert_pretraining.prepare import prepare_file
from bert_pretraining.settings import corpus_settings


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="one corpus file")
    parser.add_argument("--corpus", required=True, help="the corpus settings of the preparation, as JSON")
    parser.add_argument("--output", required=True, help="the prepared BERT-format text")
    parser.add_argument("--statistics", required=True, help="the file's statistics (JSON)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    corpus = corpus_settings({**json.loads(args.corpus), "files": [args.input]})
    prepare_file(args.input, corpus, args.output, args.statistics)
    return 0


if __name__ == "__main__":
    run_main(main)
