#!/usr/bin/env python3
"""Benchmark the corpus preparation stage (``bert_pretraining.prepare.prepare_file``) on one core.

    .venv/bin/python benchmarks/prepare_benchmark.py [--size-mb 100] [--repeats 3] [--workdir DIR] [--quick]

What it does, in order:

1. Builds a corpus of ``--size-mb`` MB (10^6 bytes of document text, UTF-8)
   from the bundled demo corpus ``demo/corpus/python-docs-*.txt`` (read with
   ``bert_pretraining.corpus.iter_documents``), repeated with variation: copy
   ``c`` of a document starts with the sentence "Copy c of document d." and
   has its sentences in an order shuffled by a RNG seeded with the copy
   number, so copies are different documents; ``DUPLICATE_SHARE`` of the
   documents of each later copy are instead verbatim repeats of copy 0, so that
   deduplication has something to find. The same documents are written twice:
   as zstd-compressed JSON Lines (``{"id": ..., "text": sentences joined by
   spaces}``, one object per line) and as BERT-format text (one sentence per
   line, a blank line after each document). A corpus of a quarter of the size
   (the first documents of the same stream) is written as JSON Lines too.
   Corpora are reused from ``--workdir`` when their size and recipe match.
2. Measures, each run in its own process (``os.wait4`` gives that child's own
   wall time, user + system CPU time and peak RSS; the child is one thread
   of Python plus sentencex and zstandard, which do not start threads: CPU
   time is checked against wall time):
   (a) ``prepare_file`` on the .jsonl.zst (format jsonl, split into
       sentences with sentencex, language en; normalisation, long sentences
       cut, short documents dropped, statistics written);
   (b) the straightforward reference with the same splitter: zstandard's
       stream reader, ``json.loads`` of each line, ``sentencex.segment("en",
       text)``, one stripped sentence per line written, a blank line after each
       document; no normalisation, no statistics, no fsync;
   (c) ``prepare_file`` on the BERT-format .txt (format bert: no splitting).
   The three alternate (a, b, c, a, b, c, ...), ``--repeats`` times each; the
   best run by wall time is shown (all runs are in the JSON). Then (a) on the
   quarter-size corpus (the same number of repeats), for peak RSS against
   corpus size; and once ``shard_corpus(..., deduplicate=True)`` (16 shards,
   held-out fraction 0.01, the config's defaults) on (a)'s prepared output.
3. Prints a Markdown table with the goals beside the measured values and
   writes it, with the raw numbers, to the work directory
   (``prepare_benchmark.md``, ``prepare_benchmark.json``). An unmet goal is
   reported, never an error.

MB/s per core = corpus text MB / wall seconds of the process (startup,
imports and the final fsync included; the figure without startup, timed
inside the child around the call, is in the notes). Goals: at least
5 MB/s per core with sentence splitting, and peak RSS flat in corpus size.

``--profile`` additionally runs (a) under cProfile on a 10 MB corpus (or
``--size-mb`` if smaller) and prints the top functions by own time.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DEMO_GLOB = str(ROOT / "demo" / "corpus" / "python-docs-*.txt")
LANGUAGE = "en"
SEED = 12345
DUPLICATE_SHARE = 0.05  # of each later copy's documents: verbatim repeats of copy 0
ZSTD_LEVEL = 3
RECIPE = f"v1 seed={SEED} duplicates={DUPLICATE_SHARE} zstd={ZSTD_LEVEL}"  # change to rebuild cached corpora
QUICK_MB = 4.0
PROFILE_MB = 10.0
NUM_SHARDS = 16
HELDOUT_FRACTION = 0.01

GOAL_MB_PER_S = 5.0
GOAL_FLAT_GROWTH = 1.25  # "flat": peak RSS at the full size / at a quarter of it


def say(message: str) -> None:
    print(f"[prepare-benchmark] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------


def variant_documents(seed: int = SEED):
    """An endless stream of (id, sentences): the demo documents, copy after copy, each copy varied."""
    from bert_pretraining.corpus import iter_documents

    paths = sorted(glob.glob(DEMO_GLOB))
    if not paths:
        raise SystemExit(f"prepare_benchmark: no demo corpus at {DEMO_GLOB}")
    documents = [document for document in iter_documents(paths) if document]
    copy = 0
    while True:
        rng = random.Random(f"{seed}-{copy}")
        for number, sentences in enumerate(documents):
            if copy == 0 or rng.random() < DUPLICATE_SHARE:
                yield f"{copy}-{number}", sentences
            else:
                shuffled = list(sentences)
                rng.shuffle(shuffled)
                yield f"{copy}-{number}", [f"Copy {copy} of document {number}.", *shuffled]
        copy += 1


@dataclass
class Corpus:
    jsonl_zst: str
    txt: str | None
    text_bytes: int  # UTF-8 bytes of the document texts (sentences joined by spaces)
    documents: int
    jsonl_bytes: int  # uncompressed JSON Lines
    zst_bytes: int
    txt_bytes: int

    @property
    def mb(self) -> float:
        return self.text_bytes / 1e6


def build_corpus(directory: Path, name: str, target_bytes: int, with_txt: bool) -> Corpus:
    """The first documents of ``variant_documents`` up to ``target_bytes`` of text, as .jsonl.zst (and .txt)."""
    import zstandard

    meta_path = directory / f"{name}.json"
    key = {"recipe": RECIPE, "target_bytes": target_bytes, "with_txt": with_txt,
           "demo": [[os.path.basename(p), os.path.getsize(p)] for p in sorted(glob.glob(DEMO_GLOB))]}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        corpus = Corpus(**meta["corpus"])
        if meta["key"] == key and os.path.exists(corpus.jsonl_zst) and (not with_txt or os.path.exists(corpus.txt)):
            say(f"reusing {corpus.jsonl_zst} ({corpus.mb:.1f} MB of text)")
            return corpus
    jsonl_path = directory / f"{name}.jsonl.zst"
    txt_path = directory / f"{name}.txt" if with_txt else None
    say(f"building {jsonl_path}{' and ' + str(txt_path) if txt_path else ''} ({target_bytes / 1e6:g} MB of text)")
    text_bytes = documents = jsonl_bytes = txt_bytes = 0
    with open(jsonl_path, "wb") as raw, zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw) as zst, \
            (open(txt_path, "w", encoding="utf-8", newline="\n") if txt_path else open(os.devnull, "w")) as txt:
        for doc_id, sentences in variant_documents():
            if text_bytes >= target_bytes:
                break
            text = " ".join(sentences)
            line = (json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n").encode("utf-8")
            zst.write(line)
            jsonl_bytes += len(line)
            text_bytes += len(text.encode("utf-8"))
            documents += 1
            if txt_path:
                block = "\n".join(sentences) + "\n\n"
                txt.write(block)
                txt_bytes += len(block.encode("utf-8"))
    corpus = Corpus(str(jsonl_path), str(txt_path) if txt_path else None, text_bytes, documents, jsonl_bytes,
                    os.path.getsize(jsonl_path), txt_bytes)
    meta_path.write_text(json.dumps({"key": key, "corpus": asdict(corpus)}, indent=2) + "\n")
    return corpus


# --------------------------------------------------------------------------
# The children: one measurement each
# --------------------------------------------------------------------------


def child_prepare(path: str, output: str):
    """(a) and (c): the stage's own function, with the config's defaults and language en."""
    from bert_pretraining.prepare import prepare_file
    from bert_pretraining.settings import corpus_settings

    settings = corpus_settings({"files": [path], "language": LANGUAGE})

    def run() -> dict:
        stats = prepare_file(path, settings, output, output + ".stats.json")
        return {"documents_read": stats.documents_read, "prepared": stats.prepared, "too_short": stats.too_short,
                "sentences_cut": stats.sentences_cut}

    return run


def child_reference(path: str, output: str):
    """(b) the plain loop: decompress, json.loads, sentencex.segment, write."""
    import io

    import zstandard
    from sentencex import segment

    def run() -> dict:
        documents = sentences = 0
        with open(path, "rb") as raw, open(output, "w", encoding="utf-8") as out:
            lines = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw), buffer_size=1 << 20)
            for line in lines:
                text = json.loads(line)["text"]
                for sentence in segment(LANGUAGE, text):
                    sentence = sentence.strip()
                    if sentence:
                        out.write(sentence + "\n")
                        sentences += 1
                out.write("\n")
                documents += 1
        return {"documents_read": documents, "sentences": sentences}

    return run


def child_shard(path: str, output: str):
    from bert_pretraining.corpus import shard_corpus

    def run() -> dict:
        summary = shard_corpus([path], output, NUM_SHARDS, HELDOUT_FRACTION, SEED, deduplicate=True)
        counts = summary.files[path]
        return {"duplicates": counts.duplicates, "kept": counts.kept, "heldout": summary.heldout_documents}

    return run


CHILDREN = {"prepare": child_prepare, "reference": child_reference, "shard": child_shard}


def run_child(kind: str, path: str, output: str, result_path: str, profile: str | None) -> None:
    """Imports and settings first (startup), then the timed call (optionally under cProfile)."""
    run = CHILDREN[kind](path, output)
    wall, cpu = time.perf_counter(), time.process_time()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        counts = profiler.runcall(run)
        profiler.dump_stats(profile)
    else:
        counts = run()
    Path(result_path).write_text(json.dumps({
        "inner_wall_s": time.perf_counter() - wall, "inner_cpu_s": time.process_time() - cpu, **counts}))


# --------------------------------------------------------------------------
# Measuring one process
# --------------------------------------------------------------------------


@dataclass
class Run:
    kind: str
    corpus_mb: float
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    inner_wall_s: float
    inner_cpu_s: float
    output_bytes: int
    counts: dict = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return self.corpus_mb / self.wall_s

    @property
    def mb_per_cpu_s(self) -> float:
        return self.corpus_mb / self.cpu_s

    @property
    def mb_per_s_inner(self) -> float:
        return self.corpus_mb / self.inner_wall_s


def measure(kind: str, path: str, corpus_mb: float, work: Path, profile: str | None = None) -> Run:
    """One child process; its own wall, CPU (user + system) and peak RSS from ``os.wait4``.

    (RUSAGE_CHILDREN would be a running maximum over all children; wait4 gives this child's.)
    """
    output = str(work / f"out-{kind}")
    result_path = str(work / f"result-{kind}.json")
    log_path = work / f"log-{kind}.txt"
    env = dict(os.environ, OMP_NUM_THREADS="1", RAYON_NUM_THREADS="1", PYTHONHASHSEED="0")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--input", path, "--output", output,
           "--result", result_path] + (["--profile-output", profile] if profile else [])
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-20:]
        raise SystemExit(f"prepare_benchmark: {kind} on {path} exited {code}:\n" + "\n".join(tail))
    result = json.loads(Path(result_path).read_text())
    if os.path.isdir(output):
        output_bytes = sum(p.stat().st_size for p in Path(output).glob("*.txt"))
    else:
        output_bytes = os.path.getsize(output)
        result["sentences_written"] = count_sentences(output)
    run = Run(kind, corpus_mb, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
              result.pop("inner_wall_s"), result.pop("inner_cpu_s"), output_bytes, result)
    say(f"{kind} {corpus_mb:.1f} MB: wall {run.wall_s:.2f} s, CPU {run.cpu_s:.2f} s, "
        f"{run.mb_per_s:.2f} MB/s, peak RSS {run.peak_rss_mib:.0f} MiB")
    return run


def count_sentences(path: str) -> int:
    """Non-blank lines of a BERT-format output (counted after the run, outside the measurement)."""
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda run: run.wall_s)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def report(meta: dict, corpus: Corpus, small: Corpus, runs: dict[str, list[Run]], shard: Run | None) -> str:
    a, b, c, q = (best(runs[k]) for k in ("prepare", "reference", "prepare_bert", "prepare_quarter"))
    repeats = len(runs["prepare"])
    growth = a.peak_rss_mib / q.peak_rss_mib
    rows = [
        ("(a) `prepare_file`, .jsonl.zst, split (en)", a, corpus.mb),
        ("(b) reference: zstandard + json.loads + sentencex.segment + write", b, corpus.mb),
        ("(c) `prepare_file`, BERT-format .txt (no split)", c, corpus.mb),
        ("(a) at a quarter of the size", q, small.mb),
    ]
    if shard:
        rows.append(("`shard_corpus(deduplicate=True)` on (a)'s output", shard, shard.corpus_mb))
    lines = [
        f"Corpus preparation, {meta['date']} ({meta['machine']}); 1-minute load average "
        f"{meta['load_average']['start'][0]} at the start, {meta['load_average']['end'][0]} at the end.",
        "",
        f"Corpus: {corpus.mb:.1f} MB of document text, {corpus.documents:,} documents "
        f"(JSON Lines {corpus.jsonl_bytes / 1e6:.1f} MB uncompressed, {corpus.zst_bytes / 1e6:.1f} MB zstd; "
        f"BERT-format .txt {corpus.txt_bytes / 1e6:.1f} MB). Quarter: {small.mb:.1f} MB, {small.documents:,} documents.",
        f"Each row: one process, best of {repeats} by wall time (shard_corpus: one run); "
        "MB = 10^6 bytes of corpus text (for shard_corpus: of its input, the prepared text).",
        "",
        "| what | MB | wall s | CPU s | CPU / wall | MB/s per core (wall) | MB per CPU s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, run, mb in rows:
        lines.append(f"| {label} | {mb:.1f} | {run.wall_s:.2f} | {run.cpu_s:.2f} | {run.cpu_s / run.wall_s:.2f} "
                     f"| {run.mb_per_s:.2f} | {run.mb_per_cpu_s:.2f} | {run.peak_rss_mib:.0f} |")
    met = a.mb_per_s >= GOAL_MB_PER_S
    flat = growth <= GOAL_FLAT_GROWTH
    lines += [
        "",
        f"- Goal: at least {GOAL_MB_PER_S:g} MB/s per core with splitting: (a) **{a.mb_per_s:.2f} MB/s** "
        f"({'met' if met else 'NOT met'}); the reference loop {b.mb_per_s:.2f} MB/s, so (a) takes "
        f"{a.wall_s / b.wall_s:.2f}x its time.",
        f"- Goal: memory flat in corpus size: peak RSS {q.peak_rss_mib:.0f} MiB at {small.mb:.1f} MB, "
        f"{a.peak_rss_mib:.0f} MiB at {corpus.mb:.1f} MB: **{growth:.2f}x** for {corpus.mb / small.mb:.1f}x the text "
        f"({'flat: met' if flat else 'NOT flat'}, limit {GOAL_FLAT_GROWTH}x).",
        f"- Without startup (imports and settings; timed inside the child around the call): (a) {a.mb_per_s_inner:.2f}, "
        f"(b) {b.mb_per_s_inner:.2f}, (c) {c.mb_per_s_inner:.2f} MB/s"
        + (f"; shard_corpus {shard.mb_per_s_inner:.2f} MB/s." if shard else "."),
        f"- Runs of (a), wall s: {', '.join(f'{r.wall_s:.2f}' for r in runs['prepare'])} "
        f"(median {statistics.median(r.wall_s for r in runs['prepare']):.2f}).",
        f"- Output: (a) {a.counts.get('prepared', 0):,} of {a.counts.get('documents_read', 0):,} documents "
        f"prepared ({a.counts.get('too_short', 0):,} too short), {a.counts.get('sentences_written', 0):,} sentences "
        f"({a.counts.get('sentences_cut', 0):,} longer than max_sentence_chars cut into pieces), "
        f"{a.output_bytes / 1e6:.1f} MB; (b) {b.counts.get('sentences_written', 0):,} sentences, "
        f"{b.output_bytes / 1e6:.1f} MB; (c) {c.counts.get('sentences_written', 0):,} sentences, "
        f"{c.output_bytes / 1e6:.1f} MB."
        + (f" shard_corpus: {shard.counts['duplicates']:,} duplicates dropped, {shard.counts['kept']:,} kept, "
           f"{shard.counts['heldout']:,} held out." if shard else ""),
    ]
    return "\n".join(lines)


def print_profile(path: str, limit: int = 20) -> str:
    import io
    import pstats

    buffer = io.StringIO()
    stats = pstats.Stats(path, stream=buffer)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=100.0, help="corpus text in MB (10^6 bytes)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (best kept)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where corpora (reused) and outputs go; default a temporary directory, removed after")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_MB:g} MB, one repeat")
    parser.add_argument("--profile", action="store_true",
                        help=f"also cProfile (a) on a {PROFILE_MB:g} MB corpus and print the top functions")
    parser.add_argument("--no-shard", action="store_true", help="skip the shard_corpus timing")
    # The child side (internal).
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--profile-output", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        run_child(args.child, args.input, args.output, args.result, args.profile_output)
        return 0
    size_mb, repeats = (QUICK_MB, 1) if args.quick else (args.size_mb, args.repeats)
    temporary = None
    if args.workdir is None:
        temporary = tempfile.mkdtemp(prefix="prepare-benchmark-")
        work = Path(temporary)
    else:
        work = args.workdir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    try:
        return benchmark(work, size_mb, repeats, args)
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def benchmark(work: Path, size_mb: float, repeats: int, args) -> int:
    load_start = [round(x, 2) for x in os.getloadavg()]
    tag = f"{size_mb:g}MB"
    corpus = build_corpus(work, f"corpus-{tag}", int(size_mb * 1e6), with_txt=True)
    small = build_corpus(work, f"corpus-{size_mb / 4:g}MB", int(size_mb * 1e6 / 4), with_txt=False)
    runs: dict[str, list[Run]] = {"prepare": [], "reference": [], "prepare_bert": [], "prepare_quarter": []}
    scratch = work / f"runs-{tag}"
    for repeat in range(repeats):
        say(f"repeat {repeat + 1} of {repeats}")
        for kind, path, mb in (("prepare", corpus.jsonl_zst, corpus.mb), ("reference", corpus.jsonl_zst, corpus.mb),
                               ("prepare_bert", corpus.txt, corpus.mb), ("prepare_quarter", small.jsonl_zst, small.mb)):
            run_dir = scratch / kind
            run_dir.mkdir(parents=True, exist_ok=True)
            child = "reference" if kind == "reference" else "prepare"
            run = measure(child, path, mb, run_dir)
            run.kind = kind
            runs[kind].append(run)
    shard = None
    if not args.no_shard:
        prepared = scratch / "prepare" / "out-prepare"
        kept = work / f"prepared-{tag}.txt"
        shutil.move(prepared, kept)
        shard_dir = scratch / "shard"
        shard_dir.mkdir(parents=True, exist_ok=True)
        shard = measure("shard", str(kept), os.path.getsize(kept) / 1e6, shard_dir)
        shutil.rmtree(shard_dir / "out-shard", ignore_errors=True)
    profile_text = ""
    if args.profile:
        profile_mb = min(PROFILE_MB, size_mb)
        pcorpus = corpus if profile_mb == size_mb else build_corpus(
            work, f"corpus-{profile_mb:g}MB", int(profile_mb * 1e6), with_txt=False)
        pdir = scratch / "profile"
        pdir.mkdir(parents=True, exist_ok=True)
        profile_path = str(work / f"prepare-{profile_mb:g}MB.prof")
        prun = measure("prepare", pcorpus.jsonl_zst, pcorpus.mb, pdir, profile=profile_path)
        profile_text = (f"cProfile of (a) on {pcorpus.mb:.1f} MB ({prun.wall_s:.1f} s wall under the profiler; "
                        f"{profile_path}):\n\n" + print_profile(profile_path))
    for directory in scratch.glob("*"):  # the outputs (hundreds of MB); logs and results stay
        for path in directory.glob("out-*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
                   f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
        "command": " ".join([".venv/bin/python", "benchmarks/prepare_benchmark.py", *sys.argv[1:]]),
    }
    text = report(meta, corpus, small, runs, shard)
    print(text)
    if profile_text:
        print("\n" + profile_text)
    (work / "prepare_benchmark.md").write_text(text + "\n")
    (work / "prepare_benchmark.json").write_text(json.dumps({
        "meta": meta, "corpus": asdict(corpus), "quarter": asdict(small),
        "runs": {kind: [asdict(r) for r in rs] for kind, rs in runs.items()},
        "shard": asdict(shard) if shard else None,
    }, indent=2, default=str) + "\n")
    say(f"wrote {work / 'prepare_benchmark.md'} and prepare_benchmark.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
