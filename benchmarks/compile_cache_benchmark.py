#!/usr/bin/env python3
"""What the persistent XLA cache saves at the start of a second segment, on this machine's CPU.

    .venv/bin/python benchmarks/compile_cache_benchmark.py                  # small model, seq 128
    .venv/bin/python benchmarks/compile_cache_benchmark.py --model base --repeats 1

The real job: workflow/scripts/run_pretraining.py with XLA on, as a segment runs it, which keeps
its compile caches under the run directory (bert_pretraining.compile_cache). Two segments
(steps 0-2 from fresh weights, 2-4 resumed) compile and fill the cache: a segment that starts
from fresh weights traces its step under another name than one that restores a checkpoint, so
each leaves its own entry. The run directory is then copied, and the third segment (steps 4-6)
runs in both copies: once with the cache the first two left (warm: what every later segment
and every retry finds), once with the copy's cache removed (cold: what every segment paid
before). Each measurement is its own process, one after the other; printed: the process's wall
time, the seconds from its start to its first logged step, and the cache entries it wrote (0:
every compilation came from the cache).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' synthetic records

from bert_pretraining.bert_config import BertConfig  # noqa: E402
from bert_pretraining.compile_cache import COMPILE_CACHE_DIR  # noqa: E402
from synthetic_records import VOCAB_SIZE, make_records  # noqa: E402

MODELS = {
    "small": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
}
SEQ, PREDICTIONS, BATCH = 128, 20, 8


def cache_entries(run_dir: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(run_dir / COMPILE_CACHE_DIR))


def segment(run_dir: Path, data: Path, start: int, end: int) -> tuple[float, float, int]:
    """(wall seconds, seconds to the first logged step, cache entries written) of one segment job."""
    command = [
        sys.executable, str(ROOT / "workflow" / "scripts" / "run_pretraining.py"),
        f"--bert_config_file={run_dir / 'bert_config.json'}", f"--input_file={data}/shard_*.tfrecord",
        f"--output_dir={run_dir / 'phase128'}", f"--start_step={start}", f"--end_step={end}",
        f"--max_seq_length={SEQ}", f"--max_predictions_per_seq={PREDICTIONS}", f"--train_batch_size={BATCH}",
        "--num_train_steps=100", "--num_warmup_steps=1", "--use_xla=true", "--precision=fp32",
        "--log_every_steps=1", "--save_checkpoints_steps=1000",
    ]
    entries = cache_entries(run_dir)
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_step, lines = None, []
    for line in process.stdout:
        lines.append(line)
        if first_step is None and re.search(r"\bstep +\d+", line) and "loss" in line:
            first_step = time.perf_counter() - began
    if process.wait() != 0:
        sys.exit("".join(lines[-40:]))
    return time.perf_counter() - began, first_step or float("nan"), cache_entries(run_dir) - entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="small")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="compile-cache-bench-"))
    data = work / "records"
    make_records(str(data), files=1, per_file=64, max_seq_length=SEQ, max_predictions_per_seq=PREDICTIONS)
    results = {"cold": [], "warm": []}
    for _ in range(args.repeats):
        first = work / "first"
        shutil.rmtree(first, ignore_errors=True)
        (first / "phase128").mkdir(parents=True)
        BertConfig(vocab_size=VOCAB_SIZE, **MODELS[args.model]).to_json_file(str(first / "bert_config.json"))
        segment(first, data, 0, 2)
        segment(first, data, 2, 4)
        for kind in ("cold", "warm"):
            copy = work / kind
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(first, copy)
            if kind == "cold":
                shutil.rmtree(copy / COMPILE_CACHE_DIR)
            results[kind].append(segment(copy, data, 4, 6))
    print(f"third segment, model {args.model}, seq {SEQ}, batch {BATCH}, XLA on, {args.repeats} runs each (median)")
    print("| cache | wall s | s to first step | cache entries written |")
    print("|---|---|---|---|")
    for kind, runs in results.items():
        wall, first, loaded = (statistics.median(values) for values in zip(*runs))
        print(f"| {kind} | {wall:.1f} | {first:.1f} | {loaded:.0f} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
