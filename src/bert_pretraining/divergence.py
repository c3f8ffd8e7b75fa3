"""Divergence guard: stop a segment whose loss has become non-finite or exploded.

Checked at every log line (the loss there is the mean since the previous
line). A loss that is NaN/Inf, or more than ``factor`` times the lowest loss
seen in this segment, for ``patience`` consecutive checks stops training with
a clear message, before a diverged model is saved over good checkpoints: the
last good checkpoint stays the newest. Single fp16 overflow steps are not
divergence; they are skipped and counted by the loss scale.
"""

from __future__ import annotations

import math

from .errors import WorkflowError


class DivergenceError(WorkflowError):
    """The loss is non-finite or exploding; the last good checkpoint is kept."""


class DivergenceGuard:
    def __init__(self, patience: int = 3, factor: float = 4.0, max_skipped_in_a_row: int = 100):
        self.patience = patience
        self.factor = factor
        self.max_skipped_in_a_row = max_skipped_in_a_row
        self.best = math.inf
        self.bad_checks = 0
        self.skipped_in_a_row = 0

    def after_reading(self, step: int, advanced: int, skipped: int) -> None:
        """Count steps skipped for non-finite gradients; too many in a row is divergence.

        ``advanced`` and ``skipped``: step calls since the previous reading of the
        step (host_step.HostStep) whose update was applied or skipped. fp16
        overflows are skipped while the loss scale adapts (a few in a row at
        most); a model whose gradients stay non-finite never advances again and
        would otherwise loop until the time limit without writing a log line.
        """
        # Within one reading the order is unknown: one applied update resets the count.
        self.skipped_in_a_row = 0 if advanced else self.skipped_in_a_row + skipped
        if self.skipped_in_a_row >= self.max_skipped_in_a_row:
            raise DivergenceError(
                f"training diverged at step {step}: the gradients were not finite for "
                f"{self.skipped_in_a_row} consecutive steps (each was skipped); no checkpoint was written "
                "after the last good one. Lower the learning rate, use bf16/fp32, or resume from an earlier checkpoint"
            )

    def check(self, step: int, loss: float) -> None:
        finite = math.isfinite(loss)
        exploded = finite and self.best < math.inf and loss > self.factor * self.best
        if finite and not exploded:
            self.best = min(self.best, loss)
            self.bad_checks = 0
            return
        self.bad_checks += 1
        if self.bad_checks >= self.patience:
            what = "not finite" if not finite else f"{loss:.4g}, over {self.factor:g} x the best {self.best:.4g}"
            raise DivergenceError(
                f"training diverged at step {step}: the loss was {what} for {self.bad_checks} consecutive "
                "log intervals; no checkpoint was written after the last good one. Lower the learning rate, "
                "use bf16/fp32, or resume from an earlier checkpoint"
            )
