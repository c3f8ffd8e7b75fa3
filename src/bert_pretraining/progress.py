"""Progress of long CPU stages (sharding, tokenising, building instances).

On a terminal a tqdm bar with an ETA is shown. In a batch job stderr goes to a
log file, where a redrawn bar would be noise, so a plain line is written every
``interval`` seconds instead, e.g.::

    records shard_00003: 12000/50000 documents (24%), 850 docs/s, ETA 0:00:45
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, TextIO

DEFAULT_INTERVAL = 30.0


def format_duration(seconds: float | None, unknown: str = "unknown") -> str:
    """0:00:45, 25:01:01: hours are not wrapped into days (jobs run for days).

    ``unknown`` stands for a duration that is not a finite number (None, NaN,
    infinity: no throughput yet), e.g. "" for an empty table cell.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return unknown
    seconds = int(round(max(0.0, seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _format_amount(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 2**20:.1f}"
    return f"{int(value)}"


class Progress:
    """Counts work done and reports it; use as a context manager.

    ``total`` may be None when the amount of work is unknown (no percentage or
    ETA then). ``unit`` names what is counted ("documents"; "bytes" is shown
    in MiB), ``rate_unit`` its short form for the rate ("docs").
    """

    def __init__(
        self,
        label: str,
        total: float | None = None,
        unit: str = "items",
        rate_unit: str | None = None,
        interval: float = DEFAULT_INTERVAL,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        use_bar: bool | None = None,
    ):
        self.label = label
        self.total = total
        self.unit = unit
        self.rate_unit = rate_unit or ("MiB" if unit == "bytes" else unit)
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.count = 0.0
        self.start = clock()
        self.last_report = self.start
        if use_bar is None:
            use_bar = _is_terminal(self.stream)
        self._bar = None
        if use_bar:
            from tqdm import tqdm  # imported only where a bar is drawn

            self._bar = tqdm(
                total=total,
                desc=label,
                unit="B" if unit == "bytes" else unit,
                unit_scale=unit == "bytes",
                unit_divisor=1024,
                file=self.stream,
            )

    def update(self, amount: float = 1) -> None:
        """Record ``amount`` more units of work done."""
        self.count += amount
        if self._bar is not None:
            self._bar.update(amount)
            return
        now = self.clock()
        if now - self.last_report >= self.interval:
            self.last_report = now
            self._write(self.line(now))

    def line(self, now: float | None = None) -> str:
        """The plain progress line for the current count."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        shown_rate = rate / 2**20 if self.unit == "bytes" else rate
        unit_name = "MiB" if self.unit == "bytes" else self.unit
        text = f"{self.label}: {_format_amount(self.count, self.unit)}"
        if self.total:
            percent = 100.0 * self.count / self.total
            text += f"/{_format_amount(self.total, self.unit)} {unit_name} ({percent:.0f}%)"
        else:
            text += f" {unit_name}"
        text += f", {shown_rate:.0f} {self.rate_unit}/s"
        if self.total and rate > 0:
            text += f", ETA {format_duration((self.total - self.count) / rate)}"
        return text

    def close(self) -> None:
        """Finish: close the bar, or write a last line with the elapsed time."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            return
        now = self.clock()
        text = self.line(now)
        if self.total:
            # The ETA of a finished stage is meaningless; show the duration.
            text = text.split(", ETA")[0]
        self._write(f"{text}, done in {format_duration(now - self.start)}")

    def _write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._bar is not None:
            self._bar.close()
            self._bar = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
