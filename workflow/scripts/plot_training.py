"""The run report's plots and tables: training curves, learning rate, throughput,
records statistics, segment/evaluation/job tables (read by `snakemake --report`)."""

import argparse
import json
import os
import sys

from bert_pretraining.cli import setup_logging
from bert_pretraining.errors import run_main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run_dir", required=True, help="results/<run_name>")
    parser.add_argument("--segments", required=True,
                        help='the plan as JSON: [{"phase": "phase128", "start": 0, "end": 100}, ...]')
    parser.add_argument("--seq_lengths", required=True, help="comma-separated sequence lengths of the records")
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args(argv)
    setup_logging()

    from bert_pretraining.report import build_report

    paths = build_report(
        args.run_dir,
        json.loads(args.segments),
        [int(seq) for seq in args.seq_lengths.split(",") if seq],
        args.output_dir,
    )
    for name, path in paths.items():
        print(f"{name}: {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    sys.exit(run_main(main))
