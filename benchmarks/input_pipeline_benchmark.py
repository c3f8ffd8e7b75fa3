#!/usr/bin/env python3
"""How fast the record reader delivers batches, against the BERT-base training step.

    .venv/bin/python benchmarks/input_pipeline_benchmark.py                    # batch 16, seq 128
    .venv/bin/python benchmarks/input_pipeline_benchmark.py --batch 140        # phase 1 of config.yaml
    .venv/bin/python benchmarks/input_pipeline_benchmark.py --train-steps-per-second 0.1

1. Makes records with our records stage, as the workflow does (cached in the
   work directory): ``workflow/scripts/train_vocab.py`` on the demo corpus
   (``demo/corpus/*.txt``, 30,522 pieces asked, cased), then
   ``workflow/scripts/create_pretraining_data.py`` once per demo file (one
   shard each, ``--dupe_factor`` 5, ``--max_seq_length`` / ``--max_predictions_per_seq``
   as given) and ``workflow/scripts/summarize_records.py`` for the sidecar.
2. Reads them with ``bert_pretraining.inputs.pretraining_dataset``, exactly as
   ``train_segment`` does (file interleave, 10,000-record shuffle, batching,
   ``tf.io.parse_example``, int32 casts, prefetch), alone: no training step
   competes for the two cores. The first ``--warmup`` batches (filling the
   shuffle buffer) are not timed. Reports batches/s, sequences/s and CPU
   seconds per batch.
3. Takes the training step rate of BERT-base (ours; the faster of XLA off/on)
   at the same batch, sequence length and predictions from
   ``results/benchmarks/training_step/training_step_base.json``
   (``training_step_benchmark.py --model base``), running that benchmark
   (ours only) when the file is missing or was made with other shapes, or
   uses ``--train-steps-per-second``.
4. Prints headroom = reader batches/s / training steps/s against the goal
   (>= 5x on this machine), and writes ``input_pipeline_b<batch>_s<seq>.md`` /
   ``.json`` to the work directory (``results/benchmarks/input_pipeline/``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
WORK_DIR = ROOT / "results" / "benchmarks" / "input_pipeline"
TRAINING_STEP_JSON = ROOT / "results" / "benchmarks" / "training_step" / "training_step_base.json"
GOAL_HEADROOM = 5.0


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def make_records(work: Path, seq: int, predictions: int, dupe_factor: int) -> Path:
    """Vocabulary + one shard per demo file + records.json; reused when present."""
    python = sys.executable
    texts = sorted(glob.glob(str(ROOT / "demo" / "corpus" / "*.txt")))
    if not texts:
        raise SystemExit("demo/corpus/*.txt is missing; restore it from git (git checkout -- demo/corpus)")
    vocab = work / "vocab.txt"
    if not vocab.exists():
        say("training the vocabulary on the demo corpus")
        subprocess.run([python, str(SCRIPTS / "train_vocab.py"), "--input", *texts, "--output", str(vocab),
                        "--vocab-size", "30522"], check=True)
    directory = work / f"records-s{seq}-p{predictions}-d{dupe_factor}"
    sidecar = directory / "records.json"
    if sidecar.exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    stats = []
    for index, text in enumerate(texts):
        output = directory / f"shard_{index:05d}.tfrecord"
        stats.append(directory / f"shard_{index:05d}.json")
        say(f"records stage: {os.path.basename(text)} -> {output.name}")
        subprocess.run([
            python, str(SCRIPTS / "create_pretraining_data.py"), f"--input_file={text}", f"--output_file={output}",
            f"--vocab_file={vocab}", "--do_lower_case=false", f"--max_seq_length={seq}",
            f"--max_predictions_per_seq={predictions}", f"--random_seed={12345 + index}",
            f"--dupe_factor={dupe_factor}", "--masked_lm_prob=0.15", "--short_seq_prob=0.1",
            f"--stats_file={stats[-1]}",
        ], check=True)
    subprocess.run([python, str(SCRIPTS / "summarize_records.py"), "--stats", *map(str, stats),
                    "--output", str(sidecar)], check=True)
    return directory


def measure_reader(directory: Path, batch: int, seq: int, predictions: int, warmup: int, batches: int) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from bert_pretraining.inputs import pretraining_dataset
    from bert_pretraining.segment_job import records_per_file
    from bert_pretraining.records_sidecar import read_records_sidecar

    sidecar = read_records_sidecar(str(directory / "records.json"))
    counts = records_per_file(sidecar)
    files = [str(directory / name) for name in sorted(counts)]
    dataset = pretraining_dataset(files, counts, batch_size=batch, max_seq_length=seq,
                                  max_predictions_per_seq=predictions, seed=12345)
    iterator = iter(dataset)
    started = time.perf_counter()
    for _ in range(warmup):
        next(iterator)
    warmup_seconds = time.perf_counter() - started
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for _ in range(batches):
        features = next(iterator)
    elapsed = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    assert features["input_ids"].shape == (batch, seq), features["input_ids"].shape
    return dict(records=sum(counts.values()), files=len(files), warmup_batches=warmup,
                warmup_seconds=warmup_seconds, batches=batches, elapsed=elapsed,
                batches_per_second=batches / elapsed, sequences_per_second=batches * batch / elapsed,
                cpu_seconds_per_batch=cpu / batches, cpu_cores_busy=cpu / elapsed,
                load_average=os.getloadavg()[0])


def training_rate(args) -> tuple[float, str]:
    if args.train_steps_per_second:
        return args.train_steps_per_second, "--train-steps-per-second"

    def from_file():
        if not TRAINING_STEP_JSON.exists():
            return None
        data = json.loads(TRAINING_STEP_JSON.read_text())
        cfg = data["config"]
        if (cfg["batch"], cfg["seq"], cfg["predictions"]) != (args.batch, args.seq, args.predictions):
            return None
        ours = {key: value for key, value in data["results"].items()
                if key.startswith("ours-") and "steps_per_second" in value}
        if not ours:
            return None
        key = max(ours, key=lambda name: ours[name]["steps_per_second"])
        return ours[key]["steps_per_second"], f"{TRAINING_STEP_JSON.relative_to(ROOT)} ({key}, {data['meta']['date']})"

    found = from_file()
    if found is None:
        say("measuring the BERT-base training step (training_step_benchmark.py --model base --no-peer)")
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "training_step_benchmark.py"), "--model", "base",
                        "--no-peer", "--batch", str(args.batch), "--seq", str(args.seq),
                        "--predictions", str(args.predictions), "--steps", "3", "--warmup", "2"], check=True)
        found = from_file()
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--predictions", type=int, default=20)
    parser.add_argument("--dupe-factor", type=int, default=5)
    parser.add_argument("--warmup", type=int, help="untimed batches (default: enough to fill the shuffle buffer)")
    parser.add_argument("--batches", type=int, default=2000, help="timed batches")
    parser.add_argument("--train-steps-per-second", type=float, help="use this BERT-base step rate")
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))

    args.work_dir.mkdir(parents=True, exist_ok=True)
    directory = make_records(args.work_dir, args.seq, args.predictions, args.dupe_factor)
    warmup = args.warmup if args.warmup is not None else max(10, 10000 // args.batch + 10)
    train_steps_per_second, source = training_rate(args)
    say(f"reading {directory.name}: {warmup} warm-up + {args.batches} timed batches of {args.batch} "
        f"(load {os.getloadavg()[0]:.1f})")
    reader = measure_reader(directory, args.batch, args.seq, args.predictions, warmup, args.batches)
    headroom = reader["batches_per_second"] / train_steps_per_second
    met = "met" if headroom >= GOAL_HEADROOM else "NOT met"
    lines = [
        f"Records: {reader['records']:,} instances in {reader['files']} shards made by our records stage from "
        f"demo/corpus (seq {args.seq}, {args.predictions} predictions, dupe_factor {args.dupe_factor}); "
        f"batch {args.batch}; {args.batches:,} timed batches after {warmup} warm-up batches "
        f"({reader['warmup_seconds']:.1f} s, shuffle buffer fill).",
        "",
        "| reader batches/s | reader sequences/s | reader CPU s/batch | cores busy | BERT-base training steps/s "
        "| headroom (reader / training) | goal | met? |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
        f"| {reader['batches_per_second']:,.1f} | {reader['sequences_per_second']:,.0f} | "
        f"{reader['cpu_seconds_per_batch'] * 1000:.2f} ms | {reader['cpu_cores_busy']:.2f} | "
        f"{train_steps_per_second:.4f} | **{headroom:,.0f}x** | >= {GOAL_HEADROOM:g}x | {met} |",
        "",
        f"Training rate from: {source}. Load average during the read: {reader['load_average']:.1f}; "
        f"{os.cpu_count()} CPUs, {platform.platform()}.",
    ]
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    stem = f"input_pipeline_b{args.batch}_s{args.seq}"
    (args.work_dir / f"{stem}.md").write_text(f"# Input pipeline benchmark ({time.strftime('%Y-%m-%d %H:%M:%S')})\n\n{table}")
    (args.work_dir / f"{stem}.json").write_text(json.dumps(dict(
        batch=args.batch, seq=args.seq, predictions=args.predictions, dupe_factor=args.dupe_factor, reader=reader,
        train_steps_per_second=train_steps_per_second, train_rate_source=source, headroom=headroom,
        goal=GOAL_HEADROOM, date=time.strftime("%Y-%m-%d %H:%M:%S")), indent=2))
    print(f"wrote {args.work_dir / stem}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
