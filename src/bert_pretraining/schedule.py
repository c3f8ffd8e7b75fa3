"""The learning-rate schedule of Google's BERT ``optimization.py``.

Linear warmup from 0 to ``base_learning_rate`` over ``num_warmup_steps``, and
polynomial decay (linear with the default ``power=1``) from the base rate to
``end_learning_rate`` at ``num_train_steps``, with the decay computed from the
global step as if there were no warmup (Google's ``tf.train.polynomial_decay``
followed by the warmup override)::

    decay_step = min(step, num_train_steps)
    lr = (base - end) * ((num_train_steps - decay_step) / num_train_steps) ** power + end
    if step < num_warmup_steps:
        lr = base * (step / num_warmup_steps)

FinBERT's second phase reuses this function with the global step continuing
and a larger ``num_train_steps``, e.g. phase 1: 900k steps, phase 2 ends at
1M steps, so at step 900k phase 2 starts at 1e-4 * (1 - 0.9) = 1e-5.

The remaining fraction is computed as ``(N - step) / N`` rather than Google's
``1 - step / N``: the same value, but exactly 0 at the end even where XLA
turns the division into a multiplication by the reciprocal.

``learning_rate_tensor`` computes it in TF ops inside the training step
(tests/test_schedule.py holds a plain-Python reference to check it against).
"""

import tensorflow as tf

from bert_pretraining.errors import ConfigError


def learning_rate_tensor(
    step,
    *,
    base_learning_rate,
    num_train_steps,
    num_warmup_steps,
    end_learning_rate=0.0,
    power=1.0,
):
    """The learning rate at ``step`` as a float32 scalar tensor, XLA-compatible.

    ``step`` is an integer (or float) scalar tensor or variable. The arithmetic
    runs in float64 (bit-identical to the plain-Python formula eagerly; under
    XLA within an ulp), and only the result is rounded to float32.
    """
    _check_schedule(base_learning_rate, num_train_steps, num_warmup_steps, end_learning_rate, power)
    step = tf.cast(step, tf.float64)
    decay_step = tf.minimum(step, float(num_train_steps))
    fraction_left = (float(num_train_steps) - decay_step) / float(num_train_steps)
    if power != 1.0:
        # Skipped for power 1 so the result matches the plain-Python formula bit for bit.
        fraction_left = tf.pow(fraction_left, float(power))
    learning_rate = (
        float(base_learning_rate) - float(end_learning_rate)
    ) * fraction_left + float(end_learning_rate)
    if num_warmup_steps:
        warmup_learning_rate = float(base_learning_rate) * (step / float(num_warmup_steps))
        learning_rate = tf.where(
            step < float(num_warmup_steps), warmup_learning_rate, learning_rate
        )
    return tf.cast(learning_rate, tf.float32)


def _check_schedule(base_learning_rate, num_train_steps, num_warmup_steps, end_learning_rate, power):
    """Rejects settings that would give a meaningless schedule, naming the setting."""
    if not base_learning_rate > 0:
        raise ConfigError(
            f"learning rate schedule: base_learning_rate must be > 0, got {base_learning_rate!r}"
        )
    if _not_int(num_train_steps) or num_train_steps <= 0:
        raise ConfigError(
            f"learning rate schedule: num_train_steps must be a positive integer, "
            f"got {num_train_steps!r}"
        )
    if _not_int(num_warmup_steps) or num_warmup_steps < 0:
        raise ConfigError(
            f"learning rate schedule: num_warmup_steps must be an integer >= 0, "
            f"got {num_warmup_steps!r}"
        )
    if num_warmup_steps > num_train_steps:
        raise ConfigError(
            f"learning rate schedule: num_warmup_steps ({num_warmup_steps}) must be <= "
            f"num_train_steps ({num_train_steps})"
        )
    if not 0 <= end_learning_rate <= base_learning_rate:
        raise ConfigError(
            f"learning rate schedule: end_learning_rate must be in "
            f"[0, base_learning_rate={base_learning_rate!r}], got {end_learning_rate!r}"
        )
    if not power > 0:
        raise ConfigError(f"learning rate schedule: power must be > 0, got {power!r}")


def _not_int(value):
    # numpy integers are fine; bools and floats are not.
    return isinstance(value, bool) or not hasattr(value, "__index__")
