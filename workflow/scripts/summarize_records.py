#!/usr/bin/env python3
"""Write a records directory's sidecar (records.json) from the per-shard stats.

    summarize_records.py --stats STATS.json [STATS.json ...] \
        [--heldout_stats=HELDOUT.json] --output=records.json

Sums the instance counts and checks that all shards were made with the same
flags and vocabulary (training checks its own flags against the result).
"""

import argparse
import logging

from bert_pretraining.errors import run_main
from bert_pretraining.records_sidecar import summarize_records_stats, write_records_sidecar

log = logging.getLogger("summarize_records")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stats", nargs="+", required=True, help="stats files of the training shards")
    parser.add_argument("--heldout_stats", help="stats file of the held-out records")
    parser.add_argument("--output", required=True, help="the records.json to write")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    fields = summarize_records_stats(args.stats, args.heldout_stats)
    content = write_records_sidecar(args.output, **fields)
    log.info(
        "%s: %d training instances in %d files%s",
        args.output, content["num_instances"], len(content["files"]),
        f", {content['heldout']['num_instances']} held out" if content.get("heldout") else "",
    )
    return 0


if __name__ == "__main__":
    run_main(main)
