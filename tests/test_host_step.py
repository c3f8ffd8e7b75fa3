"""The host reads the global step at every event, and seldom otherwise (property tests)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bert_pretraining.host_step import HostStep


def simulate(start, end, intervals, applied, max_unsynced):
    """Run the loop's protocol against a device counter; return the readings' steps and gaps."""
    tracker = HostStep(start, end_step=end, intervals=intervals, max_unsynced=max_unsynced)
    device, readings, gaps = start, [], []
    for update_applied in applied:
        device += 1 if update_applied else 0
        if tracker.after_call():
            gaps.append(tracker.calls_since_read)
            reading = tracker.read(device)
            readings.append(reading)
            if reading.step >= end:
                break
    return readings, gaps, device


@given(
    start=st.integers(0, 200),
    length=st.integers(1, 120),
    log_every=st.integers(1, 30),
    save_every=st.integers(1, 40),
    max_unsynced=st.integers(1, 60),
    applied=st.lists(st.booleans(), min_size=1, max_size=400),
)
def test_every_event_step_is_read_and_the_reading_counts_are_exact(
    start, length, log_every, save_every, max_unsynced, applied
):
    end = start + length
    readings, gaps, device = simulate(start, end, (log_every, save_every), applied, max_unsynced)
    read_steps = {reading.step for reading in readings}
    for event in range(start + 1, min(device, end) + 1):
        if event % log_every == 0 or event % save_every == 0 or event == end:
            assert event in read_steps, (event, sorted(read_steps))
    assert all(gap <= max_unsynced for gap in gaps)
    assert sum(r.advanced for r in readings) == (readings[-1].step - start if readings else 0)
    assert all(r.advanced + r.skipped == gap for r, gap in zip(readings, gaps))


@given(start=st.integers(0, 1000), length=st.integers(1, 5000), every=st.integers(1, 500))
def test_without_skipped_steps_the_step_is_read_only_at_events_or_the_cap(start, length, every):
    end = start + length
    readings, gaps, _ = simulate(start, end, (every,), [True] * length, max_unsynced=50)
    assert readings[-1].step == end
    for reading, gap in zip(readings, gaps):
        at_event = reading.step % every == 0 or reading.step == end
        assert at_event or gap == 50, (reading, gap)


def test_a_step_that_moves_more_than_the_calls_allow_is_an_error():
    tracker = HostStep(10, end_step=100, intervals=(5,))
    tracker.after_call()
    with pytest.raises(RuntimeError, match="from 10 to 12 in 1 step calls"):
        tracker.read(12)
