"""Hang watchdog: a training process that stops making steps exits instead of idling.

The seed's TF 1.13 + Horovod stack was reported to hang (horovod/horovod#1078):
a job that stops making progress would otherwise burn the rest of its 72
hours. The training loop calls ``beat()`` after every step; if no beat comes
within ``timeout_seconds``, a background thread logs the fact and ends the
process with EXIT_HUNG, so Snakemake marks the job failed and the rerun (or
the profile's retry) resumes from the newest checkpoint.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

log = logging.getLogger(__name__)

EXIT_HUNG = 76


class HangWatchdog:
    def __init__(self, timeout_seconds: float, *, exit=os._exit, clock=time.monotonic):
        self.timeout_seconds = float(timeout_seconds)
        self._exit = exit
        self._clock = clock
        self._last_beat = clock()
        self._last_step = None
        self._stopped = threading.Event()
        self._thread = None

    def start(self) -> "HangWatchdog":
        if self.timeout_seconds > 0:
            self._thread = threading.Thread(target=self._watch, name="hang-watchdog", daemon=True)
            self._thread.start()
        return self

    def beat(self, step: int | None = None) -> None:
        self._last_beat = self._clock()
        if step is not None:
            self._last_step = step

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        interval = min(10.0, self.timeout_seconds / 4)
        while not self._stopped.wait(interval):
            silent = self._clock() - self._last_beat
            if silent > self.timeout_seconds:
                log.error(
                    "no training step completed for %.0f s (limit %.0f s, last step %s): the job is hung; "
                    "exiting with status %d so that the workflow reruns it from the newest checkpoint",
                    silent, self.timeout_seconds, self._last_step, EXIT_HUNG,
                )
                for handler in logging.getLogger().handlers:
                    handler.flush()
                sys.stderr.flush()
                self._exit(EXIT_HUNG)
                return
