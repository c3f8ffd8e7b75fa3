"""Tests of the learning-rate schedule (Google's warmup + polynomial decay)."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_pretraining.errors import ConfigError
from bert_pretraining.schedule import learning_rate_tensor

def learning_rate_at(step, *, base_learning_rate, num_train_steps, num_warmup_steps, end_learning_rate=0.0, power=1.0):
    """The reference: the schedule in plain Python floats, as the module docstring writes it."""
    assert step >= 0
    decay_step = min(step, num_train_steps)
    fraction_left = (num_train_steps - decay_step) / num_train_steps
    if power != 1.0:
        fraction_left = fraction_left**power
    learning_rate = (base_learning_rate - end_learning_rate) * fraction_left + end_learning_rate
    if num_warmup_steps and step < num_warmup_steps:
        learning_rate = base_learning_rate * (step / num_warmup_steps)
    return float(learning_rate)


PHASE_1 = dict(base_learning_rate=1e-4, num_train_steps=900_000, num_warmup_steps=9_000)
# FinBERT's phase 2: the same schedule, a longer horizon, the global step continuing.
PHASE_2 = dict(base_learning_rate=1e-4, num_train_steps=1_000_000, num_warmup_steps=9_000)


@pytest.mark.parametrize(
    "schedule, step, expected",
    [
        (PHASE_1, 0, 0.0),
        (PHASE_1, 4_500, 5e-5),
        (PHASE_1, 9_000, 1e-4 * (1 - 9_000 / 900_000)),
        (PHASE_1, 450_000, 5e-5),
        (PHASE_1, 900_000, 0.0),
        (PHASE_1, 950_000, 0.0),
        (PHASE_2, 900_000, 1e-5),
        (PHASE_2, 950_000, 5e-6),
        (PHASE_2, 1_000_000, 0.0),
    ],
)
def test_finbert_schedule(schedule, step, expected):
    assert learning_rate_at(step, **schedule) == pytest.approx(expected, rel=1e-12, abs=1e-20)
    tensor = learning_rate_tensor(tf.constant(step, tf.int64), **schedule)
    assert tensor.dtype == tf.float32 and tensor.shape == ()
    assert tensor.numpy() == np.float32(learning_rate_at(step, **schedule))


def test_no_warmup_and_polynomial_power():
    schedule = dict(base_learning_rate=1.0, num_train_steps=10, num_warmup_steps=0)
    assert learning_rate_at(0, **schedule) == 1.0
    assert learning_rate_at(5, **schedule, power=2.0) == pytest.approx(0.25)
    assert learning_rate_at(5, **schedule, end_learning_rate=0.5) == pytest.approx(0.75)
    assert learning_rate_at(20, **schedule, end_learning_rate=0.5) == 0.5
    assert learning_rate_tensor(5, **schedule, power=2.0).numpy() == pytest.approx(0.25)


def test_tensor_version_compiles_and_accepts_a_variable():
    step = tf.Variable(4_500, dtype=tf.int64)
    compiled = tf.function(lambda: learning_rate_tensor(step, **PHASE_1), jit_compile=True)
    assert compiled().numpy() == pytest.approx(5e-5, rel=1e-6)
    step.assign(950_000)
    assert compiled().numpy() == 0.0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(base_learning_rate=0.0), "base_learning_rate must be > 0"),
        (dict(num_train_steps=0), "num_train_steps must be a positive integer"),
        (dict(num_train_steps=1e6), "num_train_steps must be a positive integer"),
        (dict(num_warmup_steps=-1), "num_warmup_steps must be an integer >= 0"),
        (dict(num_warmup_steps=1_000_000), "num_warmup_steps \\(1000000\\) must be <= num_train_steps"),
        (dict(end_learning_rate=1.0), "end_learning_rate must be in"),
        (dict(power=0.0), "power must be > 0"),
    ],
)
def test_bad_settings_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        learning_rate_tensor(10, **{**PHASE_1, **overrides})


# -- properties ---------------------------------------------------------------


@st.composite
def schedules(draw):
    num_train_steps = draw(st.integers(1, 2_000_000))
    return dict(
        base_learning_rate=draw(st.floats(1e-7, 1.0)),
        num_train_steps=num_train_steps,
        num_warmup_steps=draw(st.integers(0, num_train_steps)),
        power=draw(st.sampled_from([1.0, 0.5, 2.0])),
    )


@given(schedules(), st.integers(0, 3_000_000))
def test_bounded_by_zero_and_base(schedule, step):
    learning_rate = learning_rate_at(step, **schedule)
    assert 0.0 <= learning_rate <= schedule["base_learning_rate"]


@given(schedules(), st.floats(0.0, 1.0), st.integers(0, 3_000_000))
def test_bounded_with_an_end_learning_rate(schedule, end_fraction, step):
    end = schedule["base_learning_rate"] * end_fraction
    learning_rate = learning_rate_at(step, **schedule, end_learning_rate=end)
    # Warmup starts from 0, below the end rate; after it the rate stays >= end.
    # (base - end) + end may round one ulp above base, as in Google's TF code.
    lowest = end * (1 - 1e-12) if step >= schedule["num_warmup_steps"] else 0.0
    assert lowest <= learning_rate <= schedule["base_learning_rate"] * (1 + 1e-12)


@given(schedules(), st.data())
def test_warmup_increases_strictly(schedule, data):
    warmup = schedule["num_warmup_steps"]
    if warmup < 2:
        return
    first = data.draw(st.integers(0, warmup - 2))
    second = data.draw(st.integers(first + 1, warmup - 1))
    assert learning_rate_at(first, **schedule) < learning_rate_at(second, **schedule)


@given(schedules(), st.data())
def test_decay_never_increases(schedule, data):
    start = schedule["num_warmup_steps"]
    first = data.draw(st.integers(start, 3_000_000))
    second = data.draw(st.integers(first, 3_000_000))
    assert learning_rate_at(first, **schedule) >= learning_rate_at(second, **schedule)


@given(schedules(), st.integers(0, 1_000))
def test_zero_at_and_after_the_end(schedule, extra):
    step = schedule["num_train_steps"] + extra
    assert learning_rate_at(step, **schedule) == 0.0


@settings(max_examples=30, deadline=None)
@given(schedules(), st.integers(0, 3_000_000))
def test_tensor_matches_python(schedule, step):
    expected = np.float32(learning_rate_at(step, **schedule))
    actual = learning_rate_tensor(tf.constant(step, tf.int64), **schedule).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
