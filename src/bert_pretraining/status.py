"""Where a run stands, read from its files only (no TensorFlow, safe on a login node).

The corpus: documents kept and dropped, sentences and characters (from the
corpus statistics, once the corpus is sharded; no line before). For each
segment of the plan: done (its final checkpoint exists), running (its log
changed recently), failed (its log stopped without a final checkpoint), or
pending; the newest checkpoint step; the latest loss and throughput from
metrics.jsonl; and the estimated time to the end of the run at the latest
throughput.
"""

from __future__ import annotations

import os
import time

from .checkpoints import list_checkpoints
from .files import read_json
from .progress import format_duration
from .metrics import STATUS, STATUS_HELDOUT, accuracy_against_baseline, read_metrics_line, shown_in
from .report import corpus_documents_summary, corpus_size_summary
from .prepare import changed_corpus_files
from .records_sidecar import damaged_records_in
from .run_inputs import InputChanges, input_changes
from .run_layout import RunLayout
from .settings import Settings, corpus_files
from .tokenization import read_vocabulary

RUNNING_IF_LOG_CHANGED_WITHIN = 15 * 60  # seconds; a training log line is written at least this often


def _last_metrics_line(path: str) -> dict | None:
    """The last whole line of a metrics.jsonl (metrics.read_metrics_line: old names read as today's)."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        record = read_metrics_line(line)
        if record is not None:
            return record
    return None


def segment_state(run_dir: str, segment, now: float) -> str:
    layout = RunLayout(run_dir)
    final = layout.checkpoint_files(segment.phase, segment.end_step)["index"]
    if os.path.exists(final):
        return "done"
    log_path = layout.log("pretrain", phase=segment.phase, step=segment.end_step)
    if not os.path.exists(log_path):
        return "pending"
    if now - os.path.getmtime(log_path) < RUNNING_IF_LOG_CHANGED_WITHIN:
        return "running"
    return "failed"


def run_status(settings: Settings, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    run_dir = settings.run_dir
    layout = settings.layout
    segments = settings.segments
    rows = []
    for segment in segments:
        rows.append(
            {
                "phase": segment.phase,
                "start_step": segment.start_step,
                "end_step": segment.end_step,
                "state": segment_state(run_dir, segment, now),
            }
        )
    newest_step, latest = 0, None
    for phase in settings.phases:
        phase_dir = layout.phase_dir(phase.name)
        refs = list_checkpoints(phase_dir) if os.path.isdir(phase_dir) else []
        if refs:
            newest_step = max(newest_step, refs[-1].step)
        record = _last_metrics_line(layout.metrics(phase.name))
        if record and (latest is None or record["step"] >= latest["step"]):
            latest = record
    run_last_step = segments[-1].end_step
    eta = None
    if latest and latest.get("steps_per_second"):
        eta = (run_last_step - max(newest_step, latest["step"])) / latest["steps_per_second"]
    finished = all(row["state"] == "done" for row in rows)
    evaluations = {}
    for phase in settings.phases:
        result = read_json(layout.eval_json(phase.name))
        if result is not None:
            evaluations[phase.name] = result
    return {
        "run_dir": run_dir,
        "finished": finished,
        "corpus": read_json(layout.corpus_statistics),
        "newest_checkpoint_step": newest_step,
        "run_last_step": run_last_step,
        "segments": rows,
        "latest": latest,
        "eta_seconds": 0 if finished else eta,
        "evaluations": evaluations,
        "input_changes": vars(changes) if (changes := run_input_changes(settings)) else None,
        # Cut or missing record files (sizes against records.json), each with the repair command.
        "damaged_records": damaged_records_in(layout.records_sidecar(phase.max_seq_length) for phase in settings.phases),
    }


def format_status(status: dict) -> str:
    lines = [f"run {status['run_dir']}: {'finished' if status['finished'] else 'in progress'}"]
    if status["input_changes"]:
        lines.append(f"WARNING: {InputChanges(**status['input_changes']).describe()}")
    lines += [f"WARNING: {problem}" for problem in status["damaged_records"]]
    if status["corpus"]:
        total = status["corpus"]["total"]
        lines.append(f"corpus: {corpus_documents_summary(total)}; {corpus_size_summary(total)}")
    lines.append(f"{'phase':<10} {'steps':>22}  state")
    for row in status["segments"]:
        lines.append(f"{row['phase']:<10} {row['start_step']:>10}-{row['end_step']:<11}  {row['state']}")
    lines.append(f"newest checkpoint: step {status['newest_checkpoint_step']} of {status['run_last_step']}")
    latest = status["latest"]
    if latest:
        lines.append(f"latest log (step {latest['step']}): {_figures(latest, STATUS, ', ')}")
    if status["eta_seconds"] is not None:
        lines.append(f"estimated time to the end of training: {format_duration(status['eta_seconds'])}")
    for phase, result in status["evaluations"].items():
        lines.append(f"held-out {phase} (step {result.get('step')}): {_figures(result, STATUS_HELDOUT, '; ')}")
    return "\n".join(lines)


def _figures(record: dict, place: str, separator: str) -> str:
    """"loss 6.3126, masked-LM accuracy 0.1296, ...": the metrics shown at a place that the record has.

    The masked-LM accuracy is shown beside its baseline when the record has one.
    """
    shown = []
    for metric in shown_in(place):
        value = record.get(metric.name)
        if metric.name == "masked_lm_accuracy":
            shown.append(f"{metric.label} {accuracy_against_baseline(record)}")
        elif isinstance(value, (int, float)):
            shown.append(f"{metric.label} {format(value, metric.format)}")
    return separator.join(shown)


def vocabulary_inputs(settings: Settings) -> dict[str, list[str]]:
    """The inputs of the vocabulary rule (rules/vocab.smk reads them here, and so does the rerun warning).

    ``given``: a given vocabulary, or the vocabulary file of the model
    continued from; ``shards``: the training shards a vocabulary is trained on.
    """
    if settings.init_from:
        return {"given": [settings.init_from.vocabulary_file], "shards": []}
    if settings.vocabulary.file:
        return {"given": [settings.vocabulary.file], "shards": []}
    shards = [settings.layout.shard(index) for index in range(settings.corpus.num_shards)]
    return {"given": [], "shards": shards}


def run_input_changes(settings: Settings) -> InputChanges | None:
    """What changed in the run's inputs since its checkpoints were trained: the plan, the dry run and the status say it.

    The corpus files are compared (by content) with what the preparation
    read, a given vocabulary (``vocabulary_inputs``) with the run's
    vocab.txt, and the run's vocabulary, model config and records with what
    each checkpoint records.
    """
    changed = changed_corpus_files(corpus_files(settings), settings.run_dir)
    vocab = settings.layout.vocab
    for given in vocabulary_inputs(settings)["given"]:
        if os.path.isfile(vocab) and os.path.isfile(given) and read_vocabulary(given) != read_vocabulary(vocab):
            changed.append((given, f"has other tokens than the run's {vocab}"))
    return input_changes(settings, changed)
