"""Where a training run stands: segments done, running, failed or pending; the newest
checkpoint; the latest loss and throughput; the ETA. Reads the run's settings as
Snakemake does (config.yaml, then each --configfile) and its files only (no TensorFlow)."""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bert_pretraining.cli import add_configfile_flag  # noqa: E402
from bert_pretraining.errors import run_main  # noqa: E402
from bert_pretraining.settings import load_settings  # noqa: E402
from bert_pretraining.status import format_status, run_status  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    add_configfile_flag(parser)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    args = parser.parse_args(argv)
    status = run_status(load_settings(args.configfile))
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
