#!/usr/bin/env python3
"""Cut a corpus into N shards of whole documents plus a held-out file.

    shard_corpus.py --input GLOB [GLOB ...] --num-shards N \
        --heldout-fraction F --seed S --output-dir DIR

Writes DIR/shard_00000.txt ... DIR/shard_{N-1:05d}.txt and DIR/heldout.txt.
See bert_pretraining.corpus.shard_corpus for the (deterministic) assignment.
"""

import argparse
import logging

from bert_pretraining.corpus import expand_corpus_files, shard_corpus
from bert_pretraining.errors import run_main

log = logging.getLogger("shard_corpus")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, metavar="GLOB", help="corpus files or glob patterns")
    parser.add_argument("--num-shards", type=int, required=True, help="number of training shards")
    parser.add_argument("--heldout-fraction", type=float, required=True,
                        help="fraction of documents held out for evaluation (at least one)")
    parser.add_argument("--seed", type=int, required=True, help="seed of the held-out choice")
    parser.add_argument("--output-dir", required=True, help="directory of the shards and heldout.txt")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    files = expand_corpus_files(args.input, "--input")
    log.info("%d input files", len(files))
    summary = shard_corpus(files, args.output_dir, args.num_shards, args.heldout_fraction, args.seed)
    log.info(
        "%d documents, %d sentences; %d single-sentence documents kept (Google keeps them: "
        "their instances always get a random next segment)",
        summary.documents, summary.sentences, summary.single_sentence_documents,
    )
    log.info(
        "%d documents held out; %d shards of %d to %d documents in %s",
        summary.heldout_documents, len(summary.shard_documents),
        min(summary.shard_documents), max(summary.shard_documents), args.output_dir,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
