"""How long `snakemake -n` takes for the production plan as the shard count grows.

Goal (issue "Performance"): under 5 s at 1024 shards, so the dry run users
start with stays instant. Prints one line per shard count, beside the goal.

    .venv/bin/python benchmarks/dry_run_benchmark.py [--shards 16,256,1024]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAKEMAKE = os.path.join(os.path.dirname(sys.executable), "snakemake")
GOAL_SECONDS = 5.0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", default="16,256,1024")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'shards':>7} {'jobs':>6} {'best s':>8} {'goal s':>7}")
    with tempfile.TemporaryDirectory() as scratch:
        for shards in [int(value) for value in args.shards.split(",")]:
            # A user's config that names only what it changes, merged over config.yaml.
            path = os.path.join(scratch, f"config-{shards}.yaml")
            with open(path, "w") as handle:
                yaml.safe_dump({"corpus": {"num_shards": shards}}, handle)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                result = subprocess.run(
                    [SNAKEMAKE, "-n", "-q", "--configfile", path], cwd=REPO, capture_output=True, text=True
                )
                times.append(time.perf_counter() - start)
                if result.returncode != 0:
                    sys.exit(result.stderr)
            jobs = 2 * (shards + 1) + shards  # records (two lengths) and corpus shards, roughly
            print(f"{shards:>7} {jobs:>6} {min(times):>8.2f} {GOAL_SECONDS:>7.1f}")


if __name__ == "__main__":
    main()
