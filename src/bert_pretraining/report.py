"""The run report's figures and tables (``snakemake --report report.html``).

Reads what a run leaves behind -- ``phase*/metrics.jsonl`` (one line per log
interval), ``phase*/eval.json``, the corpus statistics, the records' per-shard
stats files and Snakemake's benchmark TSVs -- into rows, and writes them as standalone HTML
tables and matplotlib plots (SVG, headless Agg backend). Reading needs only
the standard library; matplotlib is imported by the plotting functions alone,
so training jobs never need it.
"""

from __future__ import annotations

import csv
import html
import math
import os
import textwrap
from statistics import median

from .files import AtomicFile, read_json
from .metrics import (
    CURVES, EVALUATION, METRICS, THROUGHPUT, is_next_sentence, names_shown_in, read_metrics_line, shown_in,
)
from .progress import format_duration
from .run_layout import RECORDS_SIDECAR, REPORT_FILES, RunLayout

# Colours of the phases in every plot (phase 1, phase 2, ...).
PHASE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def read_metrics(paths: list[str]) -> list[dict]:
    """The metrics.jsonl lines of all phases, one per (phase, step), sorted by global step.

    A segment killed and resumed from an earlier checkpoint logs some steps
    again: the later line wins. A line cut short by a killed job is skipped.
    Missing files are ignored (a phase that has not logged yet). Lines of
    runs logged under the old metric names are read with today's
    (``metrics.read_metrics_line``).
    """
    by_key: dict[tuple, dict] = {}
    for path in paths:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                record = read_metrics_line(line)
                if record is None:
                    continue
                phase = record.get("phase") or os.path.basename(os.path.dirname(os.path.abspath(path)))
                record["phase"] = phase
                by_key.pop((phase, record["step"]), None)  # keep insertion order of the newest line
                by_key[(phase, record["step"])] = record
    return sorted(by_key.values(), key=lambda record: (record["step"], record.get("time", 0.0)))


def read_benchmark(path: str) -> dict | None:
    """The first data row of a Snakemake benchmark TSV as numbers (None if absent or empty)."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        return None
    result = {}
    for key, value in rows[-1].items():
        try:
            result[key] = float(value)
        except (TypeError, ValueError):
            result[key] = value
    return result


# ---------------------------------------------------------------------------
# Tables (lists of dicts)
# ---------------------------------------------------------------------------


def _median(values):
    values = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    return median(values) if values else None


def segment_rows(metrics: list[dict], segments: list[dict]) -> list[dict]:
    """One row per training segment: wall time (benchmark), throughput and MFU (metrics).

    ``segments``: dicts with ``phase``, ``start``, ``end`` and optionally
    ``benchmark`` (the segment job's benchmark TSV). Throughput is the median
    over the segment's log intervals (the first interval includes start-up and
    compilation); "steps/s (wall)" is the segment's steps over the job's wall
    time, start-up included. The MFU column is there only if metrics.jsonl
    has an ``mfu`` field.
    """
    has_mfu = any("mfu" in record for record in metrics)
    rows = []
    for segment in segments:
        phase, start, end = segment["phase"], int(segment["start"]), int(segment["end"])
        lines = [r for r in metrics if r.get("phase") == phase and start < r["step"] <= end]
        bench = read_benchmark(segment["benchmark"]) if segment.get("benchmark") else None
        wall = bench.get("s") if bench else None
        wall = wall if isinstance(wall, float) else None
        row = {
            "phase": phase,
            "segment": f"{start}-{end}",
            "steps": end - start,
            "wall time": format_duration(wall, unknown=""),
            "wall seconds": wall,
            "max RSS (MB)": bench.get("max_rss") if bench else None,
            "sequences/s": _median([r.get("sequences_per_second") for r in lines]),
            "tokens/s": _median([r.get("tokens_per_second") for r in lines]),
            "steps/s": _median([r.get("steps_per_second") for r in lines]),
            "steps/s (wall)": (end - start) / wall if wall else None,
            "final loss": lines[-1].get("loss") if lines else None,
            "skipped steps": lines[-1].get("skipped_steps") if lines else None,
        }
        if has_mfu:
            row["MFU"] = _median([r.get("mfu") for r in lines])
        rows.append(row)
    return rows


EVAL_COLUMNS = names_shown_in(EVALUATION)


def evaluation_rows(evaluations: dict[str, str]) -> list[dict]:
    """One row per phase from its eval.json (``{phase name: path}``)."""
    rows = []
    for phase, path in evaluations.items():
        result = read_json(path)
        if result is None:
            continue
        row = {"phase": phase}
        row.update({key: result[key] for key in EVAL_COLUMNS if key in result})
        row["checkpoint"] = result.get("checkpoint", "")
        rows.append(row)
    return rows


def _histogram(stats: dict, key: str) -> dict[int, int]:
    return {int(k): int(v) for k, v in (stats.get(key) or {}).items()}


def _histogram_mean(histogram: dict[int, int]):
    total = sum(histogram.values())
    return sum(k * v for k, v in histogram.items()) / total if total else None


def records_stats(stats_paths: dict[int, list[str]]) -> dict[int, list[dict]]:
    """The per-shard stats files by sequence length (``{seq: [shard_*.json, heldout.json]}``)."""
    result = {}
    for seq, paths in stats_paths.items():
        shards = []
        for path in paths:
            stats = read_json(path)
            if stats is None:
                continue
            stats = dict(stats)
            stats["part"] = os.path.splitext(os.path.basename(path))[0]
            shards.append(stats)
        result[int(seq)] = sorted(shards, key=lambda shard: (shard["part"] == "heldout", shard["part"]))
    return result


def records_rows(stats: dict[int, list[dict]]) -> list[dict]:
    """One row per records file: instances, documents, tokens, mean length and masked positions."""
    rows = []
    for seq, shards in sorted(stats.items()):
        for shard in shards:
            lengths = _histogram(shard, "sequence_length_histogram")
            masked = _histogram(shard, "masked_positions_histogram")
            rows.append({
                "max_seq_length": seq,
                "part": shard["part"],
                "instances": shard.get("num_instances"),
                "documents": shard.get("documents"),
                "sentences": shard.get("sentences"),
                "tokens": shard.get("tokens"),
                "unknown tokens": shard.get("unknown_tokens"),
                "instances truncated": shard.get("instances_truncated"),
                "random next": shard.get("random_next_instances"),
                "mean length": _histogram_mean(lengths),
                "mean masked positions": _histogram_mean(masked),
            })
    return rows


def _file_format(entry: dict) -> str:
    """"jsonl (zstd)", or "bert" for an uncompressed file."""
    return f"{entry['format']} ({entry['compression']})" if entry["compression"] else entry["format"]


def _bad_record_reasons(bad_records: dict[str, int]) -> str:
    """"invalid_json 2, missing_field 1" (most frequent first)."""
    ordered = sorted(bad_records.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason} {count:,}" for reason, count in ordered)


def _corpus_row(file: str, file_format: str, counts: dict) -> dict:
    return {
        "file": file,
        "format": file_format,
        "documents read": counts["documents_read"],
        "kept": counts["kept"],
        "too short": counts["too_short"],
        "duplicates": counts["duplicates"],
        "bad records": sum(counts["bad_records"].values()),
        "sentences": counts["sentences"],
        "characters": counts["characters"],
        "sentences cut": counts["sentences_cut"],
    }


def corpus_rows(statistics: dict | None) -> list[dict]:
    """One row per input file and a total row, from the corpus statistics (none without them).

    The column "bad record reasons" is there only when a file had bad records.
    """
    if not statistics:
        return []
    files, total = statistics["files"], statistics["total"]
    rows = [_corpus_row(entry["path"], _file_format(entry), entry) for entry in files]
    rows.append(_corpus_row(f"total ({_number_of(total['files'], 'file')})", "", total))
    if total["bad_records"]:
        for row, entry in zip(rows, [*files, total]):
            row["bad record reasons"] = _bad_record_reasons(entry["bad_records"])
    return rows


def _number_of(count: int, noun: str) -> str:
    """"1 file", "2 files"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def format_count(value: int) -> str:
    """1,234 as it is; 2.9 M and 1.2 G from a million on."""
    for limit, suffix in ((1e9, "G"), (1e6, "M")):
        if value >= limit:
            return f"{value / limit:.1f} {suffix}"
    return f"{value:,}"


def corpus_documents_summary(total: dict) -> str:
    """"4,347 documents kept of 4,350 read (dropped: 2 too short, 1 duplicates, 3 bad records: invalid_json 3)"."""
    bad = f"{sum(total['bad_records'].values()):,} bad records"
    if total["bad_records"]:
        bad += f": {_bad_record_reasons(total['bad_records'])}"
    return (
        f"{total['kept']:,} documents kept of {total['documents_read']:,} read "
        f"(dropped: {total['too_short']:,} too short, {total['duplicates']:,} duplicates, {bad})"
    )


def corpus_size_summary(total: dict) -> str:
    """"33,810 sentences, 2.9 M characters, 1 file": the kept documents' sentences and characters."""
    return (
        f"{total['sentences']:,} sentences, {format_count(total['characters'])} characters, "
        f"{_number_of(total['files'], 'file')}"
    )


def job_rows(benchmarks_dir: str) -> list[dict]:
    """Every job's benchmark (wall time, memory, CPU time), by job, for the whole run."""
    rows = []
    for root, _dirs, files in os.walk(benchmarks_dir):
        for name in files:
            if not name.endswith(".tsv"):
                continue
            path = os.path.join(root, name)
            bench = read_benchmark(path)
            if bench is None:
                continue
            rows.append({
                "job": os.path.relpath(path, benchmarks_dir)[: -len(".tsv")],
                "wall time": format_duration(bench.get("s"), unknown=""),
                "wall seconds": bench.get("s"),
                "max RSS (MB)": bench.get("max_rss"),
                "CPU seconds": bench.get("cpu_time"),
                "mean load": bench.get("mean_load"),
            })
    return sorted(rows, key=lambda row: row["job"])


# ---------------------------------------------------------------------------
# HTML tables
# ---------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #555; max-width: 60em; }
"""


def format_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value == int(value) and abs(value) >= 1:
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    return str(value)


def html_table(title: str, rows: list[dict], note: str = "") -> str:
    """A standalone HTML page with one table; the columns are the union of the rows' keys."""
    columns = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h2>{html.escape(title)}</h2>",
    ]
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    if not rows:
        parts.append("<p>No data.</p></body></html>")
        return "\n".join(parts)
    parts.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr></thead><tbody>")
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            cells.append(f'<td{" class=num" if numeric else ""}>{html.escape(format_cell(value))}</td>')
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></body></html>")
    return "\n".join(parts)


def write_text(path: str, text: str) -> None:
    with AtomicFile(path) as out:
        out.write(text)


def _save_figure(figure, path: str) -> None:
    """Write the figure (format from the file name) through a temporary file, then close it."""
    with AtomicFile(path, "wb") as out:
        figure.savefig(out.file, format=os.path.splitext(path)[1].lstrip(".") or "png")
    _pyplot().close(figure)


# ---------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _phases(metrics):
    return list(dict.fromkeys(record["phase"] for record in metrics))


def _series(metrics, phase, key):
    points = [(r["step"], r[key]) for r in metrics if r["phase"] == phase and isinstance(r.get(key), (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


def _mark_segments(ax, segments, phases):
    """Dotted lines at segment ends, a solid one where a phase starts."""
    first_steps = {}
    for segment in segments:
        first_steps.setdefault(segment["phase"], int(segment["start"]))
    for segment in segments:
        ax.axvline(int(segment["end"]), color="0.6", linestyle=":", linewidth=0.8)
    for phase, step in first_steps.items():
        if phase != (phases[0] if phases else None):
            ax.axvline(step, color="0.2", linestyle="-", linewidth=0.9)


def _colour(phases, phase):
    return PHASE_COLOURS[phases.index(phase) % len(PHASE_COLOURS)] if phase in phases else "0.3"


def plot_training_curves(metrics: list[dict], segments: list[dict], evaluations: list[dict], path: str) -> None:
    """Loss, masked-LM accuracy and NSP accuracy over the global step, all segments and phases.

    Each phase has its colour; dotted lines are segment ends, the solid line
    the start of phase 2; the held-out evaluation of each phase is a star,
    its baseline (always the most frequent masked token) a dotted level.
    The NSP panel is left out for a model without NSP.
    """
    plt = _pyplot()
    phases = _phases(metrics) or [s["phase"] for s in segments]
    has_nsp = any("next_sentence_accuracy" in r for r in metrics)
    panels = [metric for metric in shown_in(CURVES) if has_nsp or not is_next_sentence(metric)]
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 2.4 * len(panels)), sharex=True, squeeze=False)
    evals = {row["phase"]: row for row in evaluations}
    for ax, metric in zip(axes[:, 0], panels):
        key = metric.name
        for phase in phases:
            colour = _colour(phases, phase)
            steps, values = _series(metrics, phase, key)
            ax.plot(steps, values, color=colour, linewidth=1.4, marker=".", markersize=3, label=phase)
            if key == "loss":
                steps, values = _series(metrics, phase, "masked_lm_loss")
                ax.plot(steps, values, color=colour, linewidth=1.0, linestyle="--", alpha=0.7)
            result = evals.get(phase)
            baseline = (result or {}).get("masked_lm_baseline_accuracy")
            if key == "masked_lm_accuracy" and isinstance(baseline, (int, float)):
                ax.axhline(baseline, color=colour, linewidth=0.8, linestyle=":",
                           label=f"{phase} baseline: always the most frequent masked token")
            if result and isinstance(result.get(key), (int, float)) and "step" in result:
                ax.plot([result["step"]], [result[key]], marker="*", markersize=11, color=colour,
                        markeredgecolor="black", linestyle="none", label=f"{phase} held-out eval")
        _mark_segments(ax, segments, phases)
        ax.set_ylabel(f"{metric.label} (total; MLM dashed)" if key == "loss" else metric.label)
    axes[0, 0].legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("global step")
    figure.suptitle("Training curves (dotted: segment ends, solid: phase start)")
    figure.tight_layout()
    _save_figure(figure, path)


def plot_learning_rate(metrics: list[dict], segments: list[dict], path: str) -> None:
    """The learning rate over the global step: warmup, decay and phase 2's restart."""
    plt = _pyplot()
    phases = _phases(metrics)
    figure, ax = plt.subplots(figsize=(8, 3))
    for phase in phases:
        steps, values = _series(metrics, phase, "learning_rate")
        ax.plot(steps, values, color=_colour(phases, phase), linewidth=1.4, marker=".", markersize=3, label=phase)
    _mark_segments(ax, segments, phases)
    ax.set_xlabel("global step")
    ax.set_ylabel(METRICS["learning_rate"].label)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Learning rate (logged at each log interval)")
    figure.tight_layout()
    _save_figure(figure, path)


def plot_throughput(metrics: list[dict], segments: list[dict], path: str) -> None:
    """Sequences/s and tokens/s per log interval (and MFU if logged)."""
    plt = _pyplot()
    phases = _phases(metrics)
    has_mfu = any("mfu" in r for r in metrics)
    panels = [metric for metric in shown_in(THROUGHPUT) if has_mfu or metric.name != "mfu"]
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), sharex=True, squeeze=False)
    for ax, metric in zip(axes[:, 0], panels):
        for phase in phases:
            steps, values = _series(metrics, phase, metric.name)
            ax.plot(steps, values, color=_colour(phases, phase), linewidth=1.2, marker=".", markersize=3, label=phase)
        _mark_segments(ax, segments, phases)
        ax.set_ylabel(metric.label)
        ax.set_ylim(bottom=0)
    axes[0, 0].legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("global step")
    figure.suptitle("Throughput per log interval (the first interval of a segment includes start-up)")
    figure.tight_layout()
    _save_figure(figure, path)


def plot_records(stats: dict[int, list[dict]], path: str) -> None:
    """Instances per shard, the sequence-length histogram and masked positions per instance."""
    plt = _pyplot()
    seqs = sorted(stats)
    figure, axes = plt.subplots(len(seqs), 3, figsize=(11, 2.8 * max(1, len(seqs))), squeeze=False)
    for row, seq in enumerate(seqs):
        colour = PHASE_COLOURS[row % len(PHASE_COLOURS)]
        shards = stats[seq]
        ax = axes[row, 0]
        ax.bar([s["part"].replace("shard_", "") for s in shards], [s.get("num_instances", 0) for s in shards],
               color=colour)
        ax.set_title(f"seq {seq}: instances per records file")
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        for column, key, title in ((1, "sequence_length_histogram", "sequence length (tokens)"),
                                   (2, "masked_positions_histogram", "masked positions per instance")):
            total: dict[int, int] = {}
            for shard in shards:
                for value, count in _histogram(shard, key).items():
                    total[value] = total.get(value, 0) + count
            ax = axes[row, column]
            if total:
                span = max(total) - min(total) + 1
                ax.hist(list(total), weights=list(total.values()), bins=min(40, span), color=colour,
                        range=(min(total) - 0.5, max(total) + 0.5))
                ax.set_yscale("log")
            ax.set_title(f"seq {seq}: {title}")
            ax.set_ylabel("instances (log scale)")
    figure.tight_layout()
    _save_figure(figure, path)


NO_CORPUS_STATISTICS = "No corpus statistics (corpus/statistics.json): the corpus was sharded before they were written."


def plot_corpus(statistics: dict | None, path: str) -> None:
    """Sentences of the kept documents by words per sentence; the kept and dropped documents in the title.

    The share of all sentences is written on each bar. Without corpus
    statistics (a run sharded before shard_corpus wrote them) the figure
    says so.
    """
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8, 3.8))
    ax.set_xlabel("words per sentence (space-separated)")
    ax.set_ylabel("sentences")
    if not statistics:
        ax.set_title("Words per sentence")
        ax.text(0.5, 0.5, NO_CORPUS_STATISTICS, transform=ax.transAxes, ha="center", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        total, bins = statistics["total"], statistics["words_per_sentence"]
        bars = ax.bar(list(bins), list(bins.values()), color=PHASE_COLOURS[0])
        sentences = sum(bins.values())
        ax.bar_label(bars, labels=[f"{count / sentences:.1%}" if sentences else "" for count in bins.values()],
                     fontsize=7)
        ax.margins(y=0.12)
        ax.set_title("\n".join([
            f"Words per sentence of the kept documents: {corpus_size_summary(total)}",
            textwrap.fill(corpus_documents_summary(total), 110),
            f"{total['sentences_cut']:,} long sentences cut; {total['heldout']:,} documents held out",
        ]), fontsize=9)
    figure.tight_layout()
    _save_figure(figure, path)


# ---------------------------------------------------------------------------
# Everything
# ---------------------------------------------------------------------------

CORPUS_NOTE = (
    "Documents read: the documents of each input file (bad records not included). Dropped: too short"
    " (fewer than corpus.min_document_chars characters), duplicates (copies of an earlier document, with"
    " corpus.deduplicate) and bad records (skipped with corpus.on_bad_record: skip; not among those read)."
    " Kept: the documents in the shards and the held-out split; sentences and characters are theirs."
    " Sentences cut: sentences longer than corpus.max_sentence_chars, cut into pieces."
)


def build_report(run_dir: str, segments: list[dict], seq_lengths: list[int], output_dir: str) -> dict[str, str]:
    """All figures and tables of a run directory into output_dir; returns {name: path}.

    ``segments``: the plan's segments as dicts (phase, start, end); their
    benchmark files are the pretrain jobs' (run_layout: ``benchmarks/<phase>/segment-<end>.tsv``).
    The files written are run_layout.REPORT_FILES.
    """
    layout = RunLayout(run_dir)
    os.makedirs(output_dir, exist_ok=True)
    paths = {name: os.path.join(output_dir, file) for name, file in REPORT_FILES.items()}
    phases = list(dict.fromkeys(segment["phase"] for segment in segments))
    segments = [
        {**segment, "benchmark": segment.get("benchmark")
         or layout.benchmark("pretrain", phase=segment["phase"], step=segment["end"])}
        for segment in segments
    ]
    metrics = read_metrics([layout.metrics(phase) for phase in phases])
    evaluations = evaluation_rows({phase: layout.eval_json(phase) for phase in phases})
    stats = records_stats({
        seq: sorted(
            layout.records_stats(seq, name[: -len(".json")])
            for name in os.listdir(layout.records_dir(seq))
            if name.endswith(".json") and name != RECORDS_SIDECAR
        )
        for seq in dict.fromkeys(seq_lengths)
        if os.path.isdir(layout.records_dir(seq))
    })

    plot_training_curves(metrics, segments, evaluations, paths["training_curves"])
    plot_learning_rate(metrics, segments, paths["learning_rate"])
    plot_throughput(metrics, segments, paths["throughput"])
    plot_records(stats, paths["records_plot"])
    corpus = read_json(layout.corpus_statistics)
    plot_corpus(corpus, paths["corpus_plot"])
    write_text(paths["corpus"], html_table(
        "Corpus per input file", corpus_rows(corpus),
        CORPUS_NOTE if corpus else f"{NO_CORPUS_STATISTICS} {CORPUS_NOTE}",
    ))
    write_text(paths["segments"], html_table(
        "Training segments", segment_rows(metrics, segments),
        "Wall time and max RSS: the segment job's Snakemake benchmark. Sequences/s, tokens/s, steps/s"
        " (and MFU when logged): median over the segment's log intervals in metrics.jsonl."
        " Steps/s (wall): the segment's steps over its wall time, start-up included.",
    ))
    write_text(paths["evaluation"], html_table(
        "Held-out evaluation per phase", evaluations,
        "Each phase's final checkpoint on its held-out records (phase*/eval.json).",
    ))
    write_text(paths["records"], html_table(
        "Records per file", records_rows(stats),
        "From the stats file create_pretraining_data.py writes beside each records file.",
    ))
    write_text(paths["jobs"], html_table(
        "All jobs", job_rows(layout.benchmarks_dir),
        "Every job's Snakemake benchmark file (benchmarks/**.tsv): wall time, maximum resident memory, CPU time.",
    ))
    return paths
