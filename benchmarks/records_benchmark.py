#!/usr/bin/env python3
"""Benchmark the records stage against TF Model Garden's create_pretraining_data.py.

    .venv/bin/python benchmarks/records_benchmark.py [--sizes 2,8,32] [--quick]

What it does, in order:

1. Makes (once) the reference environment ``.venv-bench``: a virtual
   environment of its own with TF Model Garden (``tf-models-official``) and the
   TensorFlow it requires, at the versions pinned in ``REFERENCE_PINS``. It is
   reused while its pins are unchanged (``--setup-only`` only does this step).
2. Builds corpora of the requested sizes (MB = 10^6 bytes) by repeating the
   bundled demo corpus ``demo/corpus/*.txt`` (documents in a different seeded
   order on each repetition, cut at a document boundary). If the demo corpus is
   missing, from CPython's ``pydoc_data`` topics.
3. Trains ONE WordPiece vocabulary (8,000, cased) on the demo text with
   ``workflow/scripts/train_vocab.py``; both implementations use it.
4. For each size runs, each as its own process measured with ``os.wait4``
   (the child's own peak RSS and user+system CPU time):
   * ours: ``workflow/scripts/create_pretraining_data.py`` on the whole corpus
     as one input file (one process, as if the corpus were a single shard);
   * the reference: ``python -m official.nlp.data.create_pretraining_data``
     from ``.venv-bench``, on the same file, vocabulary and flags;
   * ours as the workflow runs it: the corpus cut by
     ``workflow/scripts/shard_corpus.py`` into shards of about ``--shard-mb``
     MB, one process per shard (sequentially); the largest peak RSS of the
     shards is the stage's memory.
   Flags: --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5
   --masked_lm_prob=0.15 --short_seq_prob=0.1 --do_lower_case=false
   --random_seed=12345.
   Then, on the largest corpus cut into ``--jobs-shards`` shards, both
   implementations with 1, 2, ... processes at a time (``--jobs``): how
   throughput and memory grow with the number of parallel jobs, as the
   workflow runs one records job per shard.
5. Checks (on the smallest size, in the reference environment, which has
   TensorFlow) that both wrote the same instances: the same sentence pairs in
   the same order once the masked tokens are put back. The masked positions
   themselves differ: Model Garden rewrote Google's masking (``_masking_ngrams``)
   and it picks other positions from the same random draws.
6. Prints the tables (Markdown) with the goals of the issue next to the
   measured values, and writes them with the raw numbers to the work directory
   (``results/benchmarks/records/`` by default: ``records_benchmark.md`` and
   ``records_benchmark.json``). Unmet goals are reported, never an error.

Throughput per core is instances / CPU seconds (user + system) of the process,
startup (imports) included; the startup of each implementation is measured on
its own and printed below the tables.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"

# The reference environment. tf-models-official 2.20.0 is the newest release;
# it requires tensorflow~=2.20.0 (the "tensorflow" distribution: its Linux
# x86-64 wheel runs on CPU only unless the [and-cuda] extra is installed, so it
# is the same build as tensorflow-cpu, which cannot be installed beside it).
# The other pins are what pip resolved for it on Python 3.11 (2026-11).
REFERENCE_PINS = (
    "tf-models-official==2.20.0",
    "tensorflow==2.20.0",
    "tensorflow-text==2.20.1",
    "tf-keras==2.20.1",
    "numpy==2.4.6",
    "absl-py==1.4.0",
    "sentencepiece==0.2.3",
    "six==1.17.0",
)
REFERENCE_MODULE = "official.nlp.data.create_pretraining_data"

# The flags of the comparison (the workflow's phase-1 values, dupe_factor 5).
FLAGS = {
    "do_lower_case": "false",
    "max_seq_length": 128,
    "max_predictions_per_seq": 20,
    "random_seed": 12345,
    "dupe_factor": 5,
    "masked_lm_prob": 0.15,
    "short_seq_prob": 0.1,
}
VOCAB_SIZE = 8000

# The goals of the issue.
GOAL_SPEEDUP_PER_CORE = 10.0
GOAL_MEMORY_RATIO = 5.0
GOAL_FLAT_GROWTH = 1.25  # "flat": peak RSS of the largest corpus / of the smallest


class BenchmarkError(Exception):
    pass


def say(message: str) -> None:
    print(f"[records-benchmark] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Measuring one process
# --------------------------------------------------------------------------


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    instances: int = 0


def measure(cmd: list[str], log_path: Path, env: dict | None = None) -> Run:
    """Run ``cmd`` as a child process; its own wall time, CPU time and peak RSS.

    ``os.wait4`` returns the resource usage of that child alone (ru_maxrss is
    in KiB on Linux), unlike RUSAGE_CHILDREN, which is a running maximum over
    all children.
    """
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise BenchmarkError(f"{' '.join(map(str, cmd))} exited {proc.returncode}; log {log_path}:\n" + "\n".join(tail))
    return Run(wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, peak_rss_mib=usage.ru_maxrss / 1024)


def quiet_tf_env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


# --------------------------------------------------------------------------
# The reference environment
# --------------------------------------------------------------------------


def reference_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_reference_env(venv: Path) -> Path:
    """Create ``venv`` with the pinned Model Garden unless it already has exactly these pins."""
    marker = venv / ".installed"
    wanted = "\n".join(REFERENCE_PINS) + "\n"
    if marker.exists() and marker.read_text() == wanted and reference_python(venv).exists():
        return reference_python(venv)
    say(f"creating the reference environment {venv} (tf-models-official, TensorFlow; ~3 GB, a few minutes)")
    base_python = shutil.which("python3") or sys.executable
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(reference_python(venv)), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + list(REFERENCE_PINS), check=True)
    # Fails here, not in the middle of a benchmark, if the module cannot load.
    subprocess.run(
        [str(reference_python(venv)), "-c", f"import {REFERENCE_MODULE}"], check=True, env=quiet_tf_env()
    )
    marker.write_text(wanted)
    return reference_python(venv)


# --------------------------------------------------------------------------
# Corpora and vocabulary
# --------------------------------------------------------------------------


def read_documents(paths: list[Path]) -> list[list[str]]:
    """BERT-format documents: lists of stripped, non-empty lines."""
    documents: list[list[str]] = []
    for path in paths:
        current: list[str] = []
        with open(path, encoding="utf-8-sig") as f:
            for line in f:
                line = line.strip()
                if line:
                    current.append(line)
                elif current:
                    documents.append(current)
                    current = []
        if current:
            documents.append(current)
    return documents


def pydoc_topics_corpus(out_dir: Path) -> list[Path]:
    """Last resort: CPython's language-reference topics, naively split into sentences."""
    from pydoc_data.topics import topics

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "pydoc-topics.txt"
    with open(path, "w", encoding="utf-8") as out:
        for name in sorted(topics):
            text = re.sub(r"\s+", " ", topics[name])
            sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"(])", text) if len(s) > 20]
            if len(sentences) >= 2:
                out.write("\n".join(sentences) + "\n\n")
    return [path]


def source_corpus(work: Path) -> tuple[list[Path], str]:
    """The demo corpus files, and a note of where they came from."""
    files = sorted(Path(p) for p in glob.glob(str(ROOT / "demo" / "corpus" / "*.txt")))
    if files:
        return files, "demo/corpus/*.txt"
    say("demo corpus unavailable (restore demo/corpus/*.txt from git): using CPython's pydoc_data topics")
    return pydoc_topics_corpus(work / "pydoc"), "CPython pydoc_data topics"


def build_corpus(documents: list[list[str]], target_bytes: int, path: Path, seed: int = 12345) -> int:
    """Write whole documents, repeating the source in a new order each pass, up to ~target_bytes."""
    if path.exists():
        return path.stat().st_size
    rng = random.Random(seed)
    blocks = ["\n".join(document) + "\n\n" for document in documents]
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        while written < target_bytes:
            order = list(range(len(blocks)))
            rng.shuffle(order)
            for index in order:
                data = blocks[index].encode("utf-8")
                out.write(blocks[index])
                written += len(data)
                if written >= target_bytes:
                    break
    return written


# --------------------------------------------------------------------------
# The two implementations
# --------------------------------------------------------------------------


def google_flags(corpus: Path, output: Path, vocab: Path, seed: int) -> list[str]:
    flags = {**FLAGS, "random_seed": seed}
    return [f"--input_file={corpus}", f"--output_file={output}", f"--vocab_file={vocab}"] + [
        f"--{name}={value}" for name, value in flags.items()
    ]


def ours_command(corpus: Path, output: Path, vocab: Path, seed: int, stats: Path, python: str = sys.executable) -> list[str]:
    return [python, str(SCRIPTS / "create_pretraining_data.py"), *google_flags(corpus, output, vocab, seed),
            f"--stats_file={stats}"]


def reference_command(ref_python: Path, corpus: Path, output: Path, vocab: Path, seed: int) -> list[str]:
    return [str(ref_python), "-m", REFERENCE_MODULE, *google_flags(corpus, output, vocab, seed)]


def reference_instances(log: Path) -> int:
    match = re.search(r"Wrote (\d+) total instances", log.read_text(errors="replace"))
    if not match:
        raise BenchmarkError(f"{log}: no 'Wrote N total instances' line from the reference")
    return int(match.group(1))


def shard(corpus: Path, shard_dir: Path, num_shards: int) -> list[Path]:
    """The workflow's shard_corpus.py; the shard files, in order."""
    subprocess.run(
        [sys.executable, str(SCRIPTS / "shard_corpus.py"), "--input", str(corpus), "--num-shards", str(num_shards),
         "--heldout-fraction", "0.001", "--seed", "12345", "--output-dir", str(shard_dir)],
        check=True, capture_output=True, cwd=ROOT,
    )
    return [shard_dir / f"shard_{number:05d}.txt" for number in range(num_shards)]


def run_ours(corpus: Path, vocab: Path, out_dir: Path, seed: int = FLAGS["random_seed"], python: str = sys.executable) -> Run:
    output = out_dir / f"{corpus.stem}.tfrecord"
    stats = out_dir / f"{corpus.stem}.json"
    run = measure(ours_command(corpus, output, vocab, seed, stats, python), out_dir / f"{corpus.stem}.log")
    run.instances = json.loads(stats.read_text())["num_instances"]
    return run


def run_reference(ref_python: Path, corpus: Path, vocab: Path, out_dir: Path) -> Run:
    output = out_dir / f"{corpus.stem}.tfrecord"
    log = out_dir / f"{corpus.stem}.log"
    run = measure(reference_command(ref_python, corpus, output, vocab, FLAGS["random_seed"]), log, env=quiet_tf_env())
    run.instances = reference_instances(log)
    return run


def run_ours_sharded(corpus: Path, vocab: Path, out_dir: Path, shard_mb: float) -> tuple[Run, int]:
    """The workflow's way: shard_corpus.py, then one process per shard (one after another)."""
    size = corpus.stat().st_size
    num_shards = max(1, round(size / (shard_mb * 1e6)))
    shard_dir = out_dir / "shards"
    total = Run(0.0, 0.0, 0.0, 0)
    for number, shard_file in enumerate(shard(corpus, shard_dir, num_shards)):
        run = run_ours(shard_file, vocab, out_dir, seed=FLAGS["random_seed"] + number)
        total.wall_s += run.wall_s
        total.cpu_s += run.cpu_s
        total.peak_rss_mib = max(total.peak_rss_mib, run.peak_rss_mib)
        total.instances += run.instances
        (out_dir / f"{shard_file.stem}.tfrecord").unlink(missing_ok=True)
    shutil.rmtree(shard_dir, ignore_errors=True)
    return total, num_shards


def run_in_parallel(commands: list[tuple[list[str], Path, dict | None]], jobs: int) -> Run:
    """Run the commands at most ``jobs`` at a time; wall time of the batch, summed CPU, max RSS per process."""
    pending, running = list(commands), {}
    total = Run(0.0, 0.0, 0.0, 0)
    start = time.perf_counter()
    while pending or running:
        while pending and len(running) < jobs:
            cmd, log_path, env = pending.pop(0)
            log = open(log_path, "wb")
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
            running[proc.pid] = (proc, log, log_path, cmd)
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        proc, log, log_path, cmd = running.pop(pid)
        log.close()
        if os.waitstatus_to_exitcode(status) != 0:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise BenchmarkError(f"{' '.join(map(str, cmd))} failed; log {log_path}:\n" + "\n".join(tail))
        total.cpu_s += usage.ru_utime + usage.ru_stime
        total.peak_rss_mib = max(total.peak_rss_mib, usage.ru_maxrss / 1024)
    total.wall_s = time.perf_counter() - start
    return total


@dataclass
class ParallelResult:
    implementation: str
    jobs: int
    shards: int
    run: Run


def parallel_scaling(corpus: Path, vocab: Path, ref_python: Path | None, out_dir: Path, jobs_list: list[int],
                     num_shards: int) -> list[ParallelResult]:
    """Both implementations on the same shards of ``corpus``, 1, 2, ... processes at a time."""
    shard_dir = out_dir / "shards"
    shards = shard(corpus, shard_dir, num_shards)
    results = []
    for jobs in jobs_list:
        for implementation in ("ours", "reference") if ref_python else ("ours",):
            commands, outputs = [], []
            for number, shard_file in enumerate(shards):
                output = out_dir / f"{implementation}-{shard_file.stem}.tfrecord"
                log = out_dir / f"{implementation}-{shard_file.stem}.log"
                seed = FLAGS["random_seed"] + number
                outputs.append((output, log))
                if implementation == "ours":
                    stats = out_dir / f"{shard_file.stem}.json"
                    commands.append((ours_command(shard_file, output, vocab, seed, stats), log, None))
                else:
                    commands.append((reference_command(ref_python, shard_file, output, vocab, seed), log,
                                     quiet_tf_env()))
            say(f"parallel scaling: {implementation}, {num_shards} shards, {jobs} at a time")
            run = run_in_parallel(commands, jobs)
            if implementation == "ours":
                run.instances = sum(json.loads((out_dir / f"{shard_file.stem}.json").read_text())["num_instances"]
                                    for shard_file in shards)
            else:
                run.instances = sum(reference_instances(log) for _, log in outputs)
            for output, _ in outputs:
                output.unlink(missing_ok=True)
            results.append(ParallelResult(implementation, jobs, num_shards, run))
    shutil.rmtree(shard_dir, ignore_errors=True)
    return results


def parallel_report(results: list[ParallelResult], corpus_mb: float) -> list[str]:
    lines = [
        f"### Parallel jobs: {corpus_mb:.1f} MB in {results[0].shards} shards, N processes at a time",
        "",
        "| implementation | jobs | wall s | instances | instances/s (wall) | speed-up vs 1 job | instances/s per core "
        "| max peak RSS MiB per job | RSS of the jobs together MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    single = {r.implementation: r.run for r in results if r.jobs == 1}
    for r in results:
        run = r.run
        rate = run.instances / run.wall_s
        base = single.get(r.implementation)
        speedup = rate / (base.instances / base.wall_s) if base else None
        lines.append(
            f"| {r.implementation} | {r.jobs} | {run.wall_s:.1f} | {run.instances:,} | {rate:,.0f} "
            f"| {fmt(speedup, '.2f')}x | {run.instances / run.cpu_s:,.0f} | {run.peak_rss_mib:,.0f} "
            f"| ~{run.peak_rss_mib * r.jobs:,.0f} |"
        )
    lines.append("")
    return lines


def measure_startup(ref_python: Path | None, work: Path) -> dict:
    """CPU and RSS of starting each implementation (its imports) without doing any work."""
    startup = {}
    ours = measure([sys.executable, str(SCRIPTS / "create_pretraining_data.py"), "--help"], work / "startup-ours.log")
    startup["ours"] = asdict(ours)
    if ref_python:
        reference = measure([str(ref_python), "-c", f"import {REFERENCE_MODULE}"], work / "startup-ref.log",
                            env=quiet_tf_env())
        startup["reference"] = asdict(reference)
    return startup


VERIFY_CODE = r"""
import json, sys
import tensorflow as tf

def records(path):
    for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
        feature = tf.train.Example.FromString(raw).features.feature
        ids = list(feature["input_ids"].int64_list.value)
        positions = feature["masked_lm_positions"].int64_list.value
        labels = feature["masked_lm_ids"].int64_list.value
        weights = feature["masked_lm_weights"].float_list.value
        masked = 0
        for position, label, weight in zip(positions, labels, weights):
            if weight:
                ids[position] = label
                masked += 1
        yield (tuple(ids), tuple(feature["segment_ids"].int64_list.value),
               feature["next_sentence_labels"].int64_list.value[0]), masked

ours = list(records(sys.argv[1]))
reference = list(records(sys.argv[2]))
print(json.dumps({
    "records_ours": len(ours),
    "records_reference": len(reference),
    "same_unmasked_in_order": sum(a[0] == b[0] for a, b in zip(ours, reference)),
    "masked_positions_ours": sum(a[1] for a in ours),
    "masked_positions_reference": sum(b[1] for b in reference),
}))
"""


def verify(ref_python: Path, ours: Path, reference: Path) -> dict:
    result = subprocess.run([str(ref_python), "-c", VERIFY_CODE, str(ours), str(reference)],
                            capture_output=True, text=True, env=quiet_tf_env())
    if result.returncode != 0:
        raise BenchmarkError("verification failed:\n" + result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


@dataclass
class SizeResult:
    target_mb: float
    corpus_mb: float
    ours: Run
    reference: Run | None
    sharded: Run | None = None
    num_shards: int = 0
    verification: dict | None = None

    @property
    def speedup(self) -> float | None:
        if not self.reference:
            return None
        return (self.ours.instances / self.ours.cpu_s) / (self.reference.instances / self.reference.cpu_s)

    @property
    def memory_ratio(self) -> float | None:
        return self.reference.peak_rss_mib / self.ours.peak_rss_mib if self.reference else None


def fmt(value, spec=".1f", missing="–") -> str:
    return missing if value is None else format(value, spec)


def verdict(value, goal) -> str:
    if value is None:
        return "–"
    return "met" if value >= goal else "NOT met"


def report(results: list[SizeResult], startup: dict, meta: dict) -> str:
    lines = []
    lines.append(f"Records stage benchmark, {meta['date']}, {meta['machine']}")
    lines.append(f"Corpus: {meta['corpus_source']} repeated; vocabulary {VOCAB_SIZE} WordPiece (cased), one for both.")
    lines.append("Flags: " + " ".join(f"--{k}={v}" for k, v in FLAGS.items()))
    lines.append(f"Reference: {REFERENCE_MODULE} ({', '.join(REFERENCE_PINS[:2])}), in {meta['reference_env']}")
    lines.append("")
    lines.append("### Ours vs the reference, one process each on the same file")
    lines.append("")
    lines.append(
        "| corpus MB | instances (ours / ref) | wall s (ours / ref) | CPU s (ours / ref) "
        "| instances/s per core (ours / ref) | per-core speed-up (goal ≥ "
        f"{GOAL_SPEEDUP_PER_CORE:.0f}x) | peak RSS MiB (ours / ref) | memory ratio ref/ours (goal ≥ {GOAL_MEMORY_RATIO:.0f}x) |"
    )
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        o, f = r.ours, r.reference
        lines.append(
            f"| {r.corpus_mb:.1f} | {o.instances:,} / {f.instances:,} | {o.wall_s:.1f} / {f.wall_s:.1f} "
            f"| {o.cpu_s:.1f} / {f.cpu_s:.1f} | {o.instances / o.cpu_s:,.0f} / {f.instances / f.cpu_s:,.0f} "
            f"| **{r.speedup:.1f}x** ({verdict(r.speedup, GOAL_SPEEDUP_PER_CORE)}) "
            f"| {o.peak_rss_mib:,.0f} / {f.peak_rss_mib:,.0f} "
            f"| **{r.memory_ratio:.1f}x** ({verdict(r.memory_ratio, GOAL_MEMORY_RATIO)}) |"
            if f else
            f"| {r.corpus_mb:.1f} | {o.instances:,} / – | {o.wall_s:.1f} / – | {o.cpu_s:.1f} / – "
            f"| {o.instances / o.cpu_s:,.0f} / – | – | {o.peak_rss_mib:,.0f} / – | – |"
        )
    lines.append("")

    sharded = [r for r in results if r.sharded]
    if sharded:
        lines.append("### Peak RSS against corpus size (goal: flat; reference for comparison)")
        lines.append("")
        lines.append(
            f"| corpus MB | ours, workflow shards of ~{meta['shard_mb']:g} MB: shards | max peak RSS MiB "
            "| CPU s (all shards) | instances/s per core | ours, whole corpus in one process: peak RSS MiB "
            "| reference (whole corpus): peak RSS MiB "
            f"| memory ratio ref / ours-sharded (goal ≥ {GOAL_MEMORY_RATIO:.0f}x) |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in sharded:
            s = r.sharded
            lines.append(
                f"| {r.corpus_mb:.1f} | {r.num_shards} | {s.peak_rss_mib:,.0f} | {s.cpu_s:.1f} "
                f"| {s.instances / s.cpu_s:,.0f} | {r.ours.peak_rss_mib:,.0f} "
                f"| {fmt(r.reference.peak_rss_mib if r.reference else None, ',.0f')} "
                + (f"| **{r.reference.peak_rss_mib / s.peak_rss_mib:.1f}x** "
                   f"({verdict(r.reference.peak_rss_mib / s.peak_rss_mib, GOAL_MEMORY_RATIO)}) |"
                   if r.reference else "| – |")
            )
        if len(sharded) >= 2:
            first, last = sharded[0], sharded[-1]
            growth = last.sharded.peak_rss_mib / first.sharded.peak_rss_mib
            whole = last.ours.peak_rss_mib / first.ours.peak_rss_mib
            ref = (last.reference.peak_rss_mib / first.reference.peak_rss_mib
                   if first.reference and last.reference else None)
            size_growth = last.corpus_mb / first.corpus_mb
            lines.append(
                f"| growth {first.corpus_mb:.1f} → {last.corpus_mb:.1f} MB ({size_growth:.1f}x the text) | "
                f"| **{growth:.2f}x** (goal ≤ {GOAL_FLAT_GROWTH}x: {'met' if growth <= GOAL_FLAT_GROWTH else 'NOT met'}) "
                f"| | | {whole:.2f}x | {fmt(ref, '.2f')}x | |"
            )
        lines.append("")

    lines.append("Notes:")
    lines.append(
        f"- 1-minute load average {meta['load_average']['start'][0]:g} at the start and "
        f"{meta['load_average']['end'][0]:g} at the end (the machine has {os.cpu_count()} cores): other work "
        "on the machine stretches wall times; CPU seconds are the basis of the comparison."
    )
    if "reference" in startup:
        so, sr = startup["ours"], startup["reference"]
        lines.append(
            f"- Startup alone (imports: ours `--help`, reference `import` of the module): ours {so['cpu_s']:.2f} CPU s, {so['peak_rss_mib']:.0f} MiB; "
            f"reference {sr['cpu_s']:.2f} CPU s, {sr['peak_rss_mib']:.0f} MiB (TensorFlow). Both are included above."
        )
        for r in results:
            if r.reference:
                o_cpu = r.ours.cpu_s - so["cpu_s"]
                f_cpu = r.reference.cpu_s - sr["cpu_s"]
                if o_cpu > 0 and f_cpu > 0:
                    lines.append(
                        f"- {r.corpus_mb:.1f} MB without startup: per-core speed-up "
                        f"{(r.ours.instances / o_cpu) / (r.reference.instances / f_cpu):.1f}x"
                    )
    for r in results:
        if r.verification:
            v = r.verification
            lines.append(
                f"- Same work ({r.corpus_mb:.1f} MB): {v['same_unmasked_in_order']:,} of {v['records_ours']:,} "
                f"records ({v['records_reference']:,} from the reference) are the same sentence pairs in the same "
                f"order once the masks are undone; masked positions {v['masked_positions_ours']:,} (ours) vs "
                f"{v['masked_positions_reference']:,} (reference; Model Garden's masking picks other positions)."
            )
    lines.append("- Ours tokenises with HF tokenizers, which may use both cores: wall < CPU is possible; "
                 "per-core throughput uses CPU seconds.")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2,8,32", help="corpus sizes in MB (10^6 bytes), comma-separated")
    parser.add_argument("--quick", action="store_true", help="a smoke run: one 1 MB corpus (overrides --sizes)")
    parser.add_argument("--shard-mb", type=float, default=2.0, help="shard size of the workflow-style runs")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "results" / "benchmarks" / "records")
    parser.add_argument("--bench-venv", type=Path, default=ROOT / ".venv-bench",
                        help="the reference environment (created if missing)")
    parser.add_argument("--no-reference", action="store_true", help="measure ours only")
    parser.add_argument("--no-sharded", action="store_true", help="skip the workflow-style (sharded) runs")
    parser.add_argument("--no-verify", action="store_true", help="skip the same-instances check")
    parser.add_argument("--keep", action="store_true", help="keep the TFRecords written")
    parser.add_argument("--setup-only", action="store_true", help="only create the reference environment")
    parser.add_argument("--jobs", default="1,2",
                        help="parallel-jobs scaling on the largest corpus: process counts, comma-separated ('' to skip)")
    parser.add_argument("--jobs-shards", type=int, default=4, help="shards of the parallel-jobs runs")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sizes = [1.0] if args.quick else [float(s) for s in args.sizes.split(",") if s.strip()]
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    load_start = [round(x, 2) for x in os.getloadavg()]

    ref_python = None if args.no_reference else ensure_reference_env(args.bench_venv.resolve())
    if args.setup_only:
        say(f"reference environment ready: {ref_python}")
        return 0

    files, corpus_source = source_corpus(work)
    say(f"source corpus: {corpus_source} ({sum(p.stat().st_size for p in files) / 1e6:.1f} MB)")
    documents = read_documents(files)

    vocab = work / "vocab.txt"
    source_key = work / "vocab.source"
    source_id = "\n".join(f"{p} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in files)
    if not vocab.exists() or not source_key.exists() or source_key.read_text() != source_id:
        say(f"training the {VOCAB_SIZE} vocabulary")
        subprocess.run([sys.executable, str(SCRIPTS / "train_vocab.py"), "--input", *map(str, files),
                        "--output", str(vocab), "--vocab-size", str(VOCAB_SIZE)],
                       check=True, capture_output=True, cwd=ROOT)
        source_key.write_text(source_id)
        for old in work.glob("corpus-*.txt"):  # corpora of another source
            old.unlink()

    startup = measure_startup(ref_python, work)
    results: list[SizeResult] = []
    for number, size in enumerate(sizes):
        corpus = work / f"corpus-{size:g}MB.txt"
        corpus_bytes = build_corpus(documents, int(size * 1e6), corpus)
        run_dir = work / f"{size:g}MB"
        ours_dir, ref_dir, shard_dir = run_dir / "ours", run_dir / "reference", run_dir / "ours-sharded"
        for d in (ours_dir, ref_dir, shard_dir):
            d.mkdir(parents=True, exist_ok=True)

        say(f"{size:g} MB: ours (one process)")
        ours = run_ours(corpus, vocab, ours_dir)
        reference = None
        if ref_python:
            say(f"{size:g} MB: reference (Model Garden)")
            reference = run_reference(ref_python, corpus, vocab, ref_dir)
        result = SizeResult(size, corpus_bytes / 1e6, ours, reference)
        if ref_python and not args.no_verify and number == 0:
            say(f"{size:g} MB: checking both wrote the same instances")
            result.verification = verify(ref_python, ours_dir / f"{corpus.stem}.tfrecord",
                                         ref_dir / f"{corpus.stem}.tfrecord")
        if not args.keep:
            for d in (ours_dir, ref_dir):
                for path in d.glob("*.tfrecord"):
                    path.unlink()
        if not args.no_sharded:
            say(f"{size:g} MB: ours, workflow shards of ~{args.shard_mb:g} MB")
            result.sharded, result.num_shards = run_ours_sharded(corpus, vocab, shard_dir, args.shard_mb)
        results.append(result)
        say(f"{size:g} MB done: ours {ours.cpu_s:.1f} CPU s / {ours.peak_rss_mib:.0f} MiB"
            + (f", reference {reference.cpu_s:.1f} CPU s / {reference.peak_rss_mib:.0f} MiB" if reference else ""))

    jobs_list = [int(j) for j in args.jobs.split(",") if j.strip()]
    parallel: list[ParallelResult] = []
    if jobs_list:
        corpus = work / f"corpus-{sizes[-1]:g}MB.txt"
        parallel_dir = work / f"{sizes[-1]:g}MB" / "parallel"
        parallel_dir.mkdir(parents=True, exist_ok=True)
        parallel = parallel_scaling(corpus, vocab, ref_python, parallel_dir, jobs_list, args.jobs_shards)

    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
                   f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "corpus_source": corpus_source,
        "reference_env": str(args.bench_venv),
        "shard_mb": args.shard_mb,
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
    }
    text = report(results, startup, meta)
    if parallel:
        text += "\n\n" + "\n".join(parallel_report(parallel, results[-1].corpus_mb))
    print(text)
    (work / "records_benchmark.md").write_text(text + "\n")
    (work / "records_benchmark.json").write_text(json.dumps({
        "meta": meta, "flags": FLAGS, "reference_pins": REFERENCE_PINS, "startup": startup,
        "results": [
            {**{k: v for k, v in asdict(r).items()}, "speedup_per_core": r.speedup, "memory_ratio": r.memory_ratio}
            for r in results
        ],
        "parallel": [asdict(r) for r in parallel],
    }, indent=2) + "\n")
    say(f"wrote {work / 'records_benchmark.md'} and records_benchmark.json")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as error:
        print(f"records_benchmark: {error}", file=sys.stderr)
        sys.exit(1)
