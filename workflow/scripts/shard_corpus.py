#!/usr/bin/env python3
"""Cut the prepared corpus into N shards of unique whole documents plus a held-out file.

    shard_corpus.py --input FILE [FILE ...] --file_statistics JSON [JSON ...] \
        [--deduplicate] --num_shards N --heldout_fraction F --seed S \
        --output_dir DIR --statistics JSON

Reads the prepared BERT-format files (one per corpus file) and writes
DIR/shard_00000.txt ... DIR/shard_{N-1:05d}.txt, DIR/heldout.txt and the
corpus statistics. See bert_pretraining.corpus.shard_corpus for the
(deterministic) assignment.
"""

import argparse
import logging

from bert_pretraining.corpus import shard_corpus
from bert_pretraining.errors import CorpusError, run_main
from bert_pretraining.job_flags import add_job_flags
from bert_pretraining.files import read_json_object, write_json
from bert_pretraining.prepare import corpus_statistics

log = logging.getLogger("shard_corpus")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, metavar="FILE", help="prepared corpus files")
    parser.add_argument("--file_statistics", nargs="+", required=True, metavar="JSON",
                        help="the preparation's statistics of each input file, in the same order")
    add_job_flags(parser, "shard")  # deduplicate, num_shards, heldout_fraction, seed (config.schema.yaml's corpus)
    parser.add_argument("--output_dir", required=True, help="directory of the shards and heldout.txt")
    parser.add_argument("--statistics", required=True, help="the corpus statistics (JSON)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if len(args.file_statistics) != len(args.input):
        raise CorpusError(f"{len(args.input)} --input files but {len(args.file_statistics)} --file_statistics; expected one each")
    file_statistics = [read_json_object(path, "a corpus file's statistics", CorpusError) for path in args.file_statistics]
    log.info("%d input files", len(args.input))
    summary = shard_corpus(args.input, args.output_dir, args.num_shards, args.heldout_fraction, args.seed,
                           deduplicate=args.deduplicate)
    statistics = corpus_statistics(file_statistics, summary)
    write_json(args.statistics, statistics)
    total = statistics["total"]
    log.info(
        "%d documents read, %d kept: %d too short, %d duplicates, %d bad records dropped",
        total["documents_read"], total["kept"], total["too_short"], total["duplicates"],
        sum(total["bad_records"].values()),
    )
    log.info(
        "%d sentences, %d characters; %d single-sentence documents kept (Google keeps them: "
        "their instances always get a random next segment)",
        summary.sentences, summary.characters, summary.single_sentence_documents,
    )
    log.info(
        "%d documents held out; %d shards of %d to %d documents in %s",
        summary.heldout_documents, len(summary.shard_documents),
        min(summary.shard_documents), max(summary.shard_documents), args.output_dir,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
