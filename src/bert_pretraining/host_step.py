"""When the training loop reads the global step from the device.

A training step advances ``global_step`` on the device by one, or by none when
its gradients were not finite (an fp16 overflow is skipped). Reading the step
on the host after every step would make the host wait for the device each
time, so the next step could not be queued while this one runs, and with
several ranks the stop agreement is a collective: both are per-step costs on a
GPU. The host needs the exact step only at events (a log line, a checkpoint,
the segment's end) and now and then to answer a stop request (SLURM's
pre-timeout signal). Since the step grows by at most one per call,
``last read + calls since`` bounds it from above: the loop reads it only when
that bound reaches the next event, or after ``max_unsynced`` calls: often
enough that a SIGTERM (SLURM's KillWait before SIGKILL is 30 s by default)
is answered with a checkpoint within a few steps.

Every rank makes the same decisions (the step is the same on all of them), so
collectives taken at a read stay in step across ranks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Reading:
    step: int
    advanced: int  # steps the device's counter moved since the previous reading
    skipped: int  # calls whose update was skipped (non-finite gradients)


class HostStep:
    def __init__(self, step: int, *, end_step: int, intervals: tuple[int, ...], max_unsynced: int = 10):
        if max_unsynced < 1:
            raise ValueError(f"max_unsynced must be at least 1, got {max_unsynced}")
        self.step = step
        self.end_step = end_step
        self.intervals = tuple(interval for interval in intervals if interval > 0)
        self.max_unsynced = max_unsynced
        self.calls_since_read = 0

    def next_event(self) -> int:
        """The first step after the last reading at which the host must act."""
        following = [(self.step // interval + 1) * interval for interval in self.intervals]
        return min([self.end_step, *following])

    def after_call(self) -> bool:
        """Count one step call; True when the step must be read now."""
        self.calls_since_read += 1
        reachable = self.step + self.calls_since_read
        return reachable >= self.next_event() or self.calls_since_read >= self.max_unsynced

    def read(self, step: int) -> Reading:
        """Record the device's step, read after ``calls_since_read`` calls."""
        advanced = step - self.step
        if not 0 <= advanced <= self.calls_since_read:
            raise RuntimeError(
                f"global step went from {self.step} to {step} in {self.calls_since_read} step calls"
            )
        reading = Reading(step=step, advanced=advanced, skipped=self.calls_since_read - advanced)
        self.step = step
        self.calls_since_read = 0
        return reading
