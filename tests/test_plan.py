"""The segment plan: segments tile each phase with no gaps and no overlaps."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bert_pretraining.errors import ConfigError
from bert_pretraining.plan import plan_run, plan_segments, previous_segment


def test_finbert_phase1_boundaries():
    segments = plan_segments("phase128", 0, 900_000, 260_000)
    assert [(s.start_step, s.end_step) for s in segments] == [
        (0, 260_000), (260_000, 520_000), (520_000, 780_000), (780_000, 900_000)
    ]


def test_run_plan_continues_across_phases():
    phases = [
        {"name": "phase128", "first_step": 0, "last_step": 900_000, "segment_steps": 260_000},
        {"name": "phase512", "first_step": 900_000, "last_step": 1_000_000, "segment_steps": 260_000},
    ]
    segments = plan_run(phases)
    assert [s.end_step for s in segments] == [260_000, 520_000, 780_000, 900_000, 1_000_000]
    assert previous_segment(segments, segments[4]) == segments[3]
    assert previous_segment(segments, segments[0]) is None


@given(
    first=st.integers(0, 10**6),
    length=st.integers(1, 10**6),
    segment_steps=st.integers(1, 10**6),
)
def test_segments_tile_the_phase(first, length, segment_steps):
    assume(length // segment_steps <= 2000)  # plans have a handful of segments; keep the test fast
    last = first + length
    segments = plan_segments("p", first, last, segment_steps)
    assert segments[0].start_step == first
    assert segments[-1].end_step == last
    for before, after in zip(segments, segments[1:]):
        assert before.end_step == after.start_step  # no gap, no overlap
    assert all(0 < s.num_steps <= segment_steps for s in segments)
    assert all(s.num_steps == segment_steps for s in segments[:-1])
    assert [s.index for s in segments] == list(range(len(segments)))


@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(1, 3000)), min_size=1, max_size=4))
def test_run_plan_is_contiguous(phase_specs):
    phases, step = [], 0
    for index, (length, segment_steps) in enumerate(phase_specs):
        phases.append({"name": f"p{index}", "first_step": step, "last_step": step + length, "segment_steps": segment_steps})
        step += length
    segments = plan_run(phases)
    assert segments[0].start_step == 0 and segments[-1].end_step == step
    assert all(a.end_step == b.start_step for a, b in zip(segments, segments[1:]))


@pytest.mark.parametrize(
    "first, last, size, message",
    [(0, 0, 10, "last_step"), (10, 5, 10, "last_step"), (0, 10, 0, "segment_steps"), (-1, 10, 5, "first_step")],
)
def test_bad_phase_is_rejected(first, last, size, message):
    with pytest.raises(ConfigError, match=message):
        plan_segments("phase128", first, last, size)


def test_phases_must_follow_each_other():
    with pytest.raises(ConfigError, match="starts at first_step 800 but phase128 ends at last_step 900"):
        plan_run([
            {"name": "phase128", "first_step": 0, "last_step": 900, "segment_steps": 100},
            {"name": "phase512", "first_step": 800, "last_step": 1000, "segment_steps": 100},
        ])
