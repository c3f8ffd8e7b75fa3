"""Print the training plan and the disk the run will need, before anything is submitted.

Reads the run's settings as Snakemake does (config.yaml, then each
--configfile) and, with --profile, the config values the profile sets and the
ranks of the training jobs (refused as `snakemake -n` refuses them). Prints
the segments of every phase with their step ranges, batch (per GPU, and
global with --profile) and learning-rate schedule, and an estimate of the
disk taken by records and checkpoints, so a scratch quota is not discovered
on day five. No TensorFlow.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bert_pretraining.cli import add_configfile_flag  # noqa: E402
from bert_pretraining.disk import estimate_disk, format_estimate  # noqa: E402
from bert_pretraining.errors import run_main  # noqa: E402
from bert_pretraining.profiles import Profile  # noqa: E402
from bert_pretraining.prepare import corpus_sample_warnings, describe_corpus  # noqa: E402
from bert_pretraining.settings import corpus_files, init_from_report, load_settings  # noqa: E402
from bert_pretraining.status import run_input_changes  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    add_configfile_flag(parser)
    parser.add_argument("--profile", metavar="DIR", help="the Snakemake profile the run will use (profiles/slurm)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    profile = Profile.read(args.profile) if args.profile else None
    settings = load_settings(args.configfile, overrides=profile.config() if profile else None)
    ranks = profile.training_ranks(settings) if profile else {}
    init_from = init_from_report(settings)
    segments = settings.segments
    estimate = estimate_disk(settings)
    changes = run_input_changes(settings)
    if args.json:
        print(json.dumps({"run_name": settings.run_name, "init_from": init_from,
                          "segments": [vars(s) for s in segments], "disk": estimate,
                          "ranks": ranks or None,
                          "global_batch": {name: global_batch(settings.phase(name), n) for name, n in ranks.items()} or None,
                          "input_changes": vars(changes) if changes else None}, indent=2))
        return 0
    training = settings.training
    print(f"run {settings.run_name} ({settings.run_dir}): {len(segments)} training segments")
    for line in init_from:
        print(f"  {line}")
    print(f"  {describe_corpus(corpus_files(settings), settings.corpus)}")
    print(
        f"  peak learning rate {training.learning_rate:g} ({training.learning_rate_schedule} schedule), "
        f"{training.precision}, XLA {'on' if training.use_xla else 'off'}, "
        f"{settings.corpus.num_shards} record files per phase (at most that many GPUs)"
    )
    for segment in segments:
        phase = settings.phase(segment.phase)
        print(
            f"  {segment.phase:<9} steps {segment.start_step:>9,} - {segment.end_step:<9,} "
            f"(batch {describe_batch(phase, ranks.get(phase.name))}, schedule: warmup {phase.num_warmup_steps:,}, "
            f"decay to 0 at {phase.num_train_steps:,})"
        )
    print(format_estimate(estimate))
    if changes:
        print(f"ERROR: {changes.describe()}")
    for warning in corpus_sample_warnings(corpus_files(settings), settings.corpus):
        print(f"WARNING: {warning}")
    return 1 if changes else 0


def global_batch(phase, ranks):
    return phase.batch_size_per_gpu * phase.gradient_accumulation_steps * ranks


def describe_batch(phase, ranks):
    """"128/GPU" without a profile; "128/GPU x 8 ranks = 1,024 sequences per step" with one."""
    text = f"{phase.batch_size_per_gpu}/GPU"
    if phase.gradient_accumulation_steps > 1:
        text += f" x {phase.gradient_accumulation_steps} micro-batches"
    if ranks is None:
        return text
    return f"{text} x {ranks} rank{'s' if ranks > 1 else ''} = {global_batch(phase, ranks):,} sequences per step"


if __name__ == "__main__":
    sys.exit(run_main(main))
