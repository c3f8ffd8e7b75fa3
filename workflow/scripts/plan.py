"""Print the training plan and the disk the run will need, before anything is submitted.

Reads the config only (no TensorFlow): the segments of every phase with their
step ranges and learning-rate schedule, and an estimate of the disk taken by
records and checkpoints, so a scratch quota is not discovered on day five.
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bert_pretraining.config import resolved_phases, training_plan  # noqa: E402
from bert_pretraining.disk import estimate_disk, format_estimate  # noqa: E402
from bert_pretraining.errors import run_main  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configfile", default="config.yaml")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with open(args.configfile, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    phases = {phase["name"]: phase for phase in resolved_phases(config)}
    segments = training_plan(config)
    estimate = estimate_disk(config)
    if args.json:
        print(json.dumps({"segments": [vars(s) for s in segments], "disk": estimate}, indent=2))
        return 0
    print(f"run {config['run_name']}: {len(segments)} training segments")
    for segment in segments:
        phase = phases[segment.phase]
        print(
            f"  {segment.phase:<9} steps {segment.start_step:>9,} - {segment.end_step:<9,} "
            f"(batch {phase['batch_size_per_gpu']}/GPU, schedule: warmup {phase['num_warmup_steps']:,}, "
            f"decay to 0 at {phase['num_train_steps']:,})"
        )
    print(format_estimate(estimate))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
