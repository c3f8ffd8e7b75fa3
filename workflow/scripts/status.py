"""Where a training run stands: segments done, running, failed or pending; the newest
checkpoint; the latest loss and throughput; the ETA. Reads files only (no TensorFlow)."""

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bert_pretraining.errors import run_main  # noqa: E402
from bert_pretraining.status import format_status, run_status  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configfile", default="config.yaml", help="the run's config (default: config.yaml)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    args = parser.parse_args(argv)
    with open(args.configfile, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    status = run_status(config)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
