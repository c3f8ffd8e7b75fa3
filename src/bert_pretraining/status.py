"""Where a run stands, read from its files only (no TensorFlow, safe on a login node).

For each segment of the plan: done (its final checkpoint exists), running
(its log changed recently), failed (its log stopped without a final
checkpoint), or pending; the newest checkpoint step; the latest loss and
throughput from metrics.jsonl; and the estimated time to the end of the run
at the latest throughput.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

from .checkpoints import list_checkpoints
from .settings import Settings

RUNNING_IF_LOG_CHANGED_WITHIN = 15 * 60  # seconds; a training log line is written at least this often


def format_duration(seconds: float | None) -> str:
    """Seconds as d days, h:mm:ss ("unknown" for None or NaN)."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "unknown"
    return str(timedelta(seconds=int(max(0, seconds))))


def _last_json_line(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def segment_state(run_dir: str, segment, now: float) -> str:
    phase_dir = os.path.join(run_dir, segment.phase)
    final = os.path.join(phase_dir, f"model.ckpt-{segment.end_step}.index")
    if os.path.exists(final):
        return "done"
    log_path = os.path.join(run_dir, "logs", segment.phase, f"segment-{segment.end_step}.log")
    if not os.path.exists(log_path):
        return "pending"
    if now - os.path.getmtime(log_path) < RUNNING_IF_LOG_CHANGED_WITHIN:
        return "running"
    return "failed"


def run_status(settings: Settings, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    run_dir = settings.run_dir
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
        phase_dir = os.path.join(run_dir, phase.name)
        refs = list_checkpoints(phase_dir) if os.path.isdir(phase_dir) else []
        if refs:
            newest_step = max(newest_step, refs[-1].step)
        record = _last_json_line(os.path.join(phase_dir, "metrics.jsonl"))
        if record and (latest is None or record["step"] >= latest["step"]):
            latest = record
    run_last_step = segments[-1].end_step
    eta = None
    if latest and latest.get("steps_per_second"):
        eta = (run_last_step - max(newest_step, latest["step"])) / latest["steps_per_second"]
    finished = all(row["state"] == "done" for row in rows)
    return {
        "run_dir": run_dir,
        "finished": finished,
        "newest_checkpoint_step": newest_step,
        "run_last_step": run_last_step,
        "segments": rows,
        "latest": latest,
        "eta_seconds": 0 if finished else eta,
    }


def format_status(status: dict) -> str:
    lines = [f"run {status['run_dir']}: {'finished' if status['finished'] else 'in progress'}"]
    lines.append(f"{'phase':<10} {'steps':>22}  state")
    for row in status["segments"]:
        lines.append(f"{row['phase']:<10} {row['start_step']:>10}-{row['end_step']:<11}  {row['state']}")
    lines.append(f"newest checkpoint: step {status['newest_checkpoint_step']} of {status['run_last_step']}")
    latest = status["latest"]
    if latest:
        lines.append(
            f"latest log (step {latest['step']}): loss {latest.get('loss', float('nan')):.4f}, "
            f"MLM accuracy {latest.get('mlm_accuracy', 0):.4f}, "
            f"{latest.get('sequences_per_second', 0):.1f} seq/s, {latest.get('tokens_per_second', 0):.0f} tokens/s"
        )
    if status["eta_seconds"] is not None:
        lines.append(f"estimated time to the end of training: {format_duration(status['eta_seconds'])}")
    return "\n".join(lines)
