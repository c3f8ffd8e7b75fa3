"""The hang watchdog and the divergence guard."""

import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bert_pretraining.divergence import DivergenceError, DivergenceGuard
from bert_pretraining.watchdog import EXIT_HUNG, HangWatchdog


def test_watchdog_exits_when_no_step_completes():
    exits = []
    dog = HangWatchdog(0.4, exit=exits.append).start()
    time.sleep(1.5)
    assert exits == [EXIT_HUNG]
    dog.stop()


def test_watchdog_is_quiet_while_steps_complete():
    exits = []
    dog = HangWatchdog(0.8, exit=exits.append).start()
    for step in range(12):
        time.sleep(0.1)
        dog.beat(step)
    dog.stop()
    assert exits == []


def test_non_finite_loss_stops_after_patience():
    guard = DivergenceGuard(patience=3)
    guard.check(10, 7.0)
    guard.check(20, math.nan)
    guard.check(30, math.inf)
    with pytest.raises(DivergenceError, match="diverged at step 40: the loss was not finite for 3 consecutive"):
        guard.check(40, math.nan)


def test_a_recovered_loss_resets_the_count():
    guard = DivergenceGuard(patience=2)
    guard.check(1, 5.0)
    guard.check(2, math.nan)
    guard.check(3, 4.9)
    guard.check(4, math.nan)  # only one bad check in a row again


def test_exploding_loss_stops():
    guard = DivergenceGuard(patience=2, factor=4.0)
    guard.check(1, 2.0)
    guard.check(2, 9.0)
    with pytest.raises(DivergenceError, match="over 4 x the best 2"):
        guard.check(3, 50.0)


@given(st.lists(st.floats(min_value=0.01, max_value=20.0), min_size=1, max_size=50))
def test_a_slowly_falling_or_noisy_finite_loss_never_stops(losses):
    guard = DivergenceGuard(patience=3, factor=4.0)
    best = min(losses)
    bounded = [min(loss, 3.9 * best) for loss in losses]  # never 4x above the best
    for step, loss in enumerate(bounded):
        guard.check(step, loss)


def test_steps_skipped_in_a_row_stop_training():
    guard = DivergenceGuard(max_skipped_in_a_row=5)
    guard.after_reading(5, advanced=0, skipped=2)
    guard.after_reading(6, advanced=1, skipped=1)  # an fp16 overflow or two is normal
    guard.after_reading(6, advanced=0, skipped=3)
    with pytest.raises(DivergenceError, match="not finite for 5 consecutive steps"):
        guard.after_reading(6, advanced=0, skipped=2)
