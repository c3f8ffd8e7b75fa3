"""Tests of the optimizer, clipping, loss scaling and a compiled training step."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bert_pretraining.modeling import BertConfig, BertPretrainer, pretraining_loss
from bert_pretraining.optimization import (
    AdamWeightDecay,
    DynamicLossScale,
    Lamb,
    clip_by_global_norm,
    make_optimizer,
)
from bert_pretraining.schedule import learning_rate_tensor

# Names chosen to exercise Google's weight-decay exclusions (substring match).
NAMES = [
    "bert/encoder/layer_0/intermediate/dense/kernel",  # decayed
    "bert/encoder/layer_0/intermediate/dense/bias",  # "bias"
    "bert/embeddings/LayerNorm/gamma",  # "LayerNorm"
    "head/layer_norm/beta",  # "layer_norm"
    "cls/predictions/output_bias",  # "bias"
    "cls/seq_relationship/output_weights",  # decayed
]
DECAYED = {NAMES[0], NAMES[5]}
SHAPES = [[3, 4], [4], [4], [4], [5], [2, 4]]


def make_variables(seed=0):
    rng = np.random.default_rng(seed)
    return {
        name: tf.Variable(rng.normal(size=shape).astype(np.float32), name=name)
        for name, shape in zip(NAMES, SHAPES)
    }


def make_grads(rng):
    return [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]


def google_reference(params, grads_per_step, learning_rates, weight_decay=0.01):
    """Google's AdamWeightDecayOptimizer in numpy (no bias correction)."""
    params = {name: value.astype(np.float64) for name, value in params.items()}
    m = {name: np.zeros_like(value) for name, value in params.items()}
    v = {name: np.zeros_like(value) for name, value in params.items()}
    for grads, learning_rate in zip(grads_per_step, learning_rates):
        for name, grad in zip(NAMES, grads):
            m[name] = 0.9 * m[name] + 0.1 * grad
            v[name] = 0.999 * v[name] + 0.001 * grad**2
            update = m[name] / (np.sqrt(v[name]) + 1e-6)
            if name in DECAYED:
                update += weight_decay * params[name]
            params[name] = params[name] - learning_rate * update
    return params, m, v


# -- AdamWeightDecay ----------------------------------------------------------


def test_slots_have_googles_names_and_start_at_zero():
    variables = make_variables()
    optimizer = AdamWeightDecay(variables)
    expected = []
    for name in NAMES:
        expected += [f"{name}/adam_m", f"{name}/adam_v"]
    assert list(optimizer.slots_by_name) == expected
    for name, slot in optimizer.slots_by_name.items():
        assert slot.dtype == tf.float32
        assert not slot.trainable
        np.testing.assert_array_equal(slot.numpy(), 0.0)
        assert slot.shape == variables[name.rsplit("/", 1)[0]].shape


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_matches_googles_update_rule(compiled):
    variables = make_variables()
    initial = {name: variable.numpy() for name, variable in variables.items()}
    optimizer = AdamWeightDecay(variables)
    rng = np.random.default_rng(1)
    grads_per_step = [make_grads(rng) for _ in range(5)]
    learning_rates = [1e-3, 2e-3, 3e-3, 2e-3, 1e-3]

    def step(grads, learning_rate):
        optimizer.apply_gradients(grads, learning_rate)

    if compiled:
        step = tf.function(step, jit_compile=True)
    for grads, learning_rate in zip(grads_per_step, learning_rates):
        step([tf.constant(g) for g in grads], tf.constant(learning_rate))

    params, m, v = google_reference(initial, grads_per_step, learning_rates)
    for name in NAMES:
        np.testing.assert_allclose(variables[name].numpy(), params[name], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(optimizer.slots_by_name[f"{name}/adam_m"].numpy(), m[name], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(optimizer.slots_by_name[f"{name}/adam_v"].numpy(), v[name], rtol=1e-5, atol=1e-8)


def test_weight_decay_exclusions():
    variables = make_variables()
    initial = {name: variable.numpy() for name, variable in variables.items()}
    optimizer = AdamWeightDecay(variables)
    # Zero gradients: only weight decay moves anything.
    optimizer.apply_gradients([np.zeros(shape, np.float32) for shape in SHAPES], 0.5)
    for name in NAMES:
        if name in DECAYED:
            np.testing.assert_allclose(variables[name].numpy(), initial[name] * (1 - 0.5 * 0.01), rtol=1e-6)
        else:
            np.testing.assert_array_equal(variables[name].numpy(), initial[name])


def test_none_gradients_and_skipped_steps_change_nothing():
    variables = make_variables()
    initial = {name: variable.numpy() for name, variable in variables.items()}
    optimizer = AdamWeightDecay(variables)
    grads = make_grads(np.random.default_rng(2))
    grads[0] = None
    optimizer.apply_gradients(grads, 1e-3)
    np.testing.assert_array_equal(variables[NAMES[0]].numpy(), initial[NAMES[0]])
    np.testing.assert_array_equal(optimizer.slots_by_name[f"{NAMES[0]}/adam_m"].numpy(), 0.0)
    assert not np.array_equal(variables[NAMES[1]].numpy(), initial[NAMES[1]])

    after_first = {name: variable.numpy() for name, variable in variables.items()}
    slots = {name: slot.numpy() for name, slot in optimizer.slots_by_name.items()}
    poisoned = [np.full(shape, np.nan, np.float32) for shape in SHAPES]
    optimizer.apply_gradients(poisoned, 1e-3, should_apply=tf.constant(False))
    for name in NAMES:
        np.testing.assert_array_equal(variables[name].numpy(), after_first[name])
    for name, slot in optimizer.slots_by_name.items():
        np.testing.assert_array_equal(slot.numpy(), slots[name])


def test_gradient_count_must_match():
    optimizer = AdamWeightDecay(make_variables())
    with pytest.raises(ValueError, match="got 2 gradients for 6 variables"):
        optimizer.apply_gradients([None, None], 1e-3)


# -- Lamb ---------------------------------------------------------------------

# One variable per rule: decayed and adapted, excluded from decay ("bias"),
# excluded from decay and (in the test below) from layer adaptation
# ("LayerNorm"), and a decayed kernel that starts at zero (trust ratio guard).
LAMB_NAMES = [
    "bert/encoder/layer_0/attention/self/query/kernel",
    "bert/encoder/layer_0/attention/self/query/bias",
    "bert/encoder/layer_0/attention/output/LayerNorm/gamma",
    "cls/predictions/transform/dense/kernel",
]
LAMB_SHAPES = [[3, 4], [4], [4], [2, 3]]


def make_lamb_variables():
    rng = np.random.default_rng(3)
    values = [
        rng.normal(size=[3, 4]),
        rng.normal(size=[4]),
        1.0 + 0.1 * rng.normal(size=[4]),
        np.zeros([2, 3]),
    ]
    return {name: tf.Variable(value.astype(np.float32), name=name) for name, value in zip(LAMB_NAMES, values)}


def lamb_reference(params, steps, *, exclude_from_layer_adaptation=(), weight_decay_rate=0.01,
                   beta_1=0.9, beta_2=0.999, epsilon=1e-6):
    """LAMB in numpy (paper's Algorithm 2 as NVIDIA's BERT runs it).

    ``steps`` is a list of (grads, learning_rate, apply); a skipped step
    (apply False) changes nothing and does not advance the global step; a
    None gradient leaves its variable alone.
    """
    params = {name: value.astype(np.float64) for name, value in params.items()}
    m = {name: np.zeros_like(value) for name, value in params.items()}
    v = {name: np.zeros_like(value) for name, value in params.items()}
    global_step = 0
    for grads, learning_rate, apply in steps:
        if not apply:
            continue
        t = global_step + 1
        for name, grad in zip(params, grads):
            if grad is None:
                continue
            m[name] = beta_1 * m[name] + (1 - beta_1) * grad
            v[name] = beta_2 * v[name] + (1 - beta_2) * grad**2
            m_hat = m[name] / (1 - beta_1**t)
            v_hat = v[name] / (1 - beta_2**t)
            update = m_hat / (np.sqrt(v_hat) + epsilon)
            if not any(word in name for word in ("LayerNorm", "layer_norm", "bias")):
                update = update + weight_decay_rate * params[name]
            trust_ratio = 1.0
            if not any(word in name for word in exclude_from_layer_adaptation):
                weight_norm, update_norm = np.linalg.norm(params[name]), np.linalg.norm(update)
                if weight_norm > 0 and update_norm > 0:
                    trust_ratio = weight_norm / update_norm
            params[name] = params[name] - learning_rate * trust_ratio * update
        global_step += 1
    return params, m, v, global_step


def test_lamb_slots_have_nvidias_names_and_defaults():
    variables = make_lamb_variables()
    optimizer = Lamb(variables)
    assert list(optimizer.slots_by_name) == [f"{name}/{slot}" for name in LAMB_NAMES for slot in ("adam_m", "adam_v")]
    assert all(slot.dtype == tf.float32 and not slot.trainable for slot in optimizer.slots_by_name.values())
    assert (optimizer.weight_decay_rate, optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.01, 0.9, 0.999, 1e-6)
    assert optimizer.exclude_from_layer_adaptation == ()


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_lamb_matches_the_reference(compiled):
    variables = make_lamb_variables()
    initial = {name: variable.numpy() for name, variable in variables.items()}
    optimizer = Lamb(variables, exclude_from_layer_adaptation=("LayerNorm",))
    global_step = tf.Variable(0, dtype=tf.int64)
    rng = np.random.default_rng(4)
    steps = []
    for index in range(6):
        grads = [rng.normal(size=shape).astype(np.float32) for shape in LAMB_SHAPES]
        apply = index != 3
        if index == 0:
            grads[1] = np.zeros(LAMB_SHAPES[1], np.float32)  # bias: zero update, guard
        if index == 2:
            grads[0] = None
        if not apply:
            grads = [np.full(shape, np.nan, np.float32) for shape in LAMB_SHAPES]
        steps.append((grads, [0.05, 0.02, 0.04, 0.03, 0.01, 0.02][index], apply))

    def train_step(grads, learning_rate, finite):
        optimizer.apply_gradients(grads, learning_rate, should_apply=finite, step=global_step)
        global_step.assign_add(tf.cast(finite, tf.int64))

    if compiled:
        train_step = tf.function(train_step, jit_compile=True)
    for grads, learning_rate, apply in steps:
        before = [variable.numpy() for variable in variables.values()] + [
            slot.numpy() for slot in optimizer.slots_by_name.values()
        ]
        train_step([None if g is None else tf.constant(g) for g in grads], tf.constant(learning_rate), tf.constant(apply))
        if not apply:
            after = [variable.numpy() for variable in variables.values()] + [
                slot.numpy() for slot in optimizer.slots_by_name.values()
            ]
            for old, new in zip(before, after):
                np.testing.assert_array_equal(new, old)

    params, m, v, reference_step = lamb_reference(initial, steps, exclude_from_layer_adaptation=("LayerNorm",))
    assert global_step.numpy() == reference_step == 5
    for name in LAMB_NAMES:
        np.testing.assert_allclose(variables[name].numpy(), params[name], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(optimizer.slots_by_name[f"{name}/adam_m"].numpy(), m[name], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(optimizer.slots_by_name[f"{name}/adam_v"].numpy(), v[name], rtol=1e-5, atol=1e-8)
    # The zero kernel moved on its first step (trust ratio 1.0, not 0/0).
    assert np.all(np.isfinite(variables[LAMB_NAMES[3]].numpy()))
    assert np.any(variables[LAMB_NAMES[3]].numpy() != 0)


def test_lamb_needs_the_step_and_adamw_ignores_it():
    with pytest.raises(ValueError, match="needs step"):
        Lamb(make_lamb_variables()).apply_gradients([None] * len(LAMB_NAMES), 1e-3)
    results = []
    for step in (None, tf.constant(7, tf.int64)):
        variables = make_variables()
        AdamWeightDecay(variables).apply_gradients(make_grads(np.random.default_rng(5)), 1e-3, step=step)
        results.append([variable.numpy() for variable in variables.values()])
    for without, with_step in zip(*results):
        np.testing.assert_array_equal(with_step, without)


def test_make_optimizer_builds_each_choice_and_rejects_others():
    adamw = make_optimizer("adamw", make_variables(), weight_decay_rate=0.02)
    assert type(adamw) is AdamWeightDecay and adamw.weight_decay_rate == 0.02
    lamb = make_optimizer("lamb", make_lamb_variables(), beta_2=0.98)
    assert type(lamb) is Lamb and lamb.beta_2 == 0.98
    with pytest.raises(ValueError, match=r"unknown optimizer 'sgd'; choices: adamw, lamb"):
        make_optimizer("sgd", make_variables())


@given(
    weights=hnp.arrays(np.float32, (3, 4), elements=st.floats(-10, 10, width=32, allow_subnormal=False)),
    grads=hnp.arrays(np.float32, (3, 4), elements=st.floats(-10, 10, width=32, allow_subnormal=False)),
    learning_rate=st.floats(1e-3, 0.1),
    step=st.integers(0, 10**6),
    name=st.sampled_from(LAMB_NAMES[:3]),
)
def test_lamb_moves_each_variable_by_the_learning_rate_times_its_norm(weights, grads, learning_rate, step, name):
    """With layer adaptation, ||change|| = lr * trust * ||update|| = lr * ||weights||, whatever the gradient."""
    assume(np.linalg.norm(weights) > 1e-3 and np.max(np.abs(grads)) > 1e-6)
    variable = tf.Variable(weights, name=name)
    Lamb({name: variable}).apply_gradients([tf.constant(grads)], learning_rate, step=tf.constant(step, tf.int64))
    change = variable.numpy().astype(np.float64) - weights
    np.testing.assert_allclose(np.linalg.norm(change), learning_rate * np.linalg.norm(weights.astype(np.float64)), rtol=1e-3)


# -- clip_by_global_norm ------------------------------------------------------


def test_clip_by_global_norm():
    grads = [tf.constant([3.0, 0.0]), None, tf.constant([[0.0, 4.0]])]
    clipped, norm = clip_by_global_norm(grads, clip_norm=1.0)
    assert norm.numpy() == pytest.approx(5.0)
    assert clipped[1] is None
    np.testing.assert_allclose(clipped[0].numpy(), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped[2].numpy(), [[0.0, 0.8]], rtol=1e-6)
    small, norm = clip_by_global_norm([tf.constant([0.3, 0.4])])
    assert norm.numpy() == pytest.approx(0.5)
    np.testing.assert_allclose(small[0].numpy(), [0.3, 0.4], rtol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_gradient_makes_the_global_norm_non_finite(bad):
    """The training step's finiteness check (the norm clipping computes anyway)."""
    grads = [tf.constant([1.0, 2.0]), None, tf.constant([[3.0, bad]])]
    _, norm = clip_by_global_norm(grads, 1.0)
    assert not tf.math.is_finite(norm).numpy()
    _, norm = clip_by_global_norm([tf.constant([1.0, 2.0]), None], 1.0)
    assert tf.math.is_finite(norm).numpy()


def test_loss_scale_adjust_takes_the_finiteness_flag():
    loss_scale = DynamicLossScale(8.0, growth_interval=2)
    loss_scale.adjust(tf.constant(False))
    assert loss_scale.loss_scale.numpy() == 4.0
    loss_scale.adjust(tf.constant(True))
    loss_scale.adjust(tf.constant(True))
    assert loss_scale.loss_scale.numpy() == 8.0


def test_global_norm_skips_missing_gradients_and_sees_non_finite_ones():
    # The step's finiteness check: any NaN/Inf gradient makes the norm non-finite.
    assert np.isfinite(clip_by_global_norm([None, tf.constant([1.0, 2.0])])[1].numpy())
    assert not np.isfinite(clip_by_global_norm([None, tf.constant([1.0, np.nan])])[1].numpy())
    assert not np.isfinite(clip_by_global_norm([tf.constant([[np.inf]]), tf.constant(1.0)])[1].numpy())


def test_step_without_nsp_leaves_the_unused_pooler_alone():
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=8,
    )
    model = BertPretrainer(config, use_next_sentence_prediction=False)
    optimizer = AdamWeightDecay(model.variables_by_name)
    variables = list(model.variables_by_name.values())
    pooler = model.variables_by_name["bert/pooler/dense/kernel"].numpy()
    ones = np.ones((2, 8), np.int32)
    with tf.GradientTape() as tape:
        mlm_logits, nsp_logits = model(ones, ones, 0 * ones, [[1], [2]], training=False)
        loss, _ = pretraining_loss(mlm_logits, nsp_logits, [[3], [4]], [[1.0], [1.0]], None)
    grads = tape.gradient(loss, variables)
    names = [name for name, grad in zip(model.variables_by_name, grads) if grad is None]
    assert names == ["bert/pooler/dense/kernel", "bert/pooler/dense/bias"]
    grads, global_norm = clip_by_global_norm(grads)
    optimizer.apply_gradients(grads, 1e-3, should_apply=tf.math.is_finite(global_norm))
    np.testing.assert_array_equal(model.variables_by_name["bert/pooler/dense/kernel"].numpy(), pooler)


# -- DynamicLossScale ---------------------------------------------------------


def test_loss_scale_scales_and_unscales():
    loss_scale = DynamicLossScale()
    assert list(loss_scale.variables_by_name) == ["loss_scale", "loss_scale_good_steps"]
    assert loss_scale.loss_scale.dtype == tf.float32
    assert loss_scale.loss_scale_good_steps.dtype == tf.int64
    assert loss_scale.loss_scale.numpy() == 2.0**15
    assert loss_scale.scale(tf.constant(2.0)).numpy() == 2.0**16
    unscaled = loss_scale.unscale([tf.constant([2.0**15, 2.0**16]), None])
    np.testing.assert_array_equal(unscaled[0].numpy(), [1.0, 2.0])
    assert unscaled[1] is None


def test_loss_scale_halves_on_overflow_and_doubles_after_good_steps():
    loss_scale = DynamicLossScale(8.0, growth_interval=3)
    for _ in range(3):
        loss_scale.loss_scale_good_steps.assign(2)
        before = loss_scale.loss_scale.numpy()
        loss_scale.adjust(tf.constant(False))
        assert loss_scale.loss_scale.numpy() == max(before / 2, 1.0)
        assert loss_scale.loss_scale_good_steps.numpy() == 0
    assert loss_scale.loss_scale.numpy() == 1.0
    loss_scale.adjust(tf.constant(False))
    assert loss_scale.loss_scale.numpy() == 1.0  # floor

    observed = []
    for _ in range(7):
        loss_scale.adjust(tf.constant(True))
        observed.append((loss_scale.loss_scale.numpy(), loss_scale.loss_scale_good_steps.numpy()))
    assert observed == [(1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (4, 0), (4, 1)]


def test_loss_scale_default_growth_interval_is_2000():
    loss_scale = DynamicLossScale()
    loss_scale.loss_scale_good_steps.assign(1998)
    loss_scale.adjust(tf.constant(True))
    assert loss_scale.loss_scale.numpy() == 2.0**15
    loss_scale.adjust(tf.constant(True))
    assert loss_scale.loss_scale.numpy() == 2.0**16
    assert loss_scale.loss_scale_good_steps.numpy() == 0


def test_loss_scale_never_grows_to_infinity():
    loss_scale = DynamicLossScale(2.0**127, growth_interval=1)
    loss_scale.adjust(tf.constant(True))
    assert loss_scale.loss_scale.numpy() == 2.0**127


def test_loss_scale_adjust_compiles():
    loss_scale = DynamicLossScale(4.0, growth_interval=2)
    adjust = tf.function(loss_scale.adjust, jit_compile=True)
    adjust(tf.constant(True))
    adjust(tf.constant(False))
    assert loss_scale.loss_scale.numpy() == 2.0
    adjust(tf.constant(True))
    adjust(tf.constant(True))
    assert loss_scale.loss_scale.numpy() == 4.0


# -- a whole compiled training step ------------------------------------------


def test_compiled_training_step_learns_and_replays_exactly():
    """Model + loss + loss scale + clip + optimizer under XLA, as training runs it."""
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    model = BertPretrainer(config, seed=0)
    optimizer = AdamWeightDecay(model.variables_by_name)
    loss_scale = DynamicLossScale()
    variables = list(model.variables_by_name.values())
    rng = np.random.default_rng(0)
    batch, seq, predictions = 4, 16, 3
    input_mask = np.ones((batch, seq), np.int32)
    input_mask[:, 12:] = 0
    features = dict(
        input_ids=rng.integers(0, 100, (batch, seq)) * input_mask,
        input_mask=input_mask,
        segment_ids=np.repeat([[0] * 6 + [1] * 10], batch, axis=0),
        masked_lm_positions=rng.integers(1, 12, (batch, predictions)),
    )
    masked_lm_ids = rng.integers(0, 100, (batch, predictions))
    masked_lm_weights = np.ones((batch, predictions), np.float32)
    next_sentence_labels = rng.integers(0, 2, (batch, 1))

    @tf.function(jit_compile=True)
    def train_step(step):
        with tf.GradientTape() as tape:
            mlm_logits, nsp_logits = model(
                **features,
                training=True,
                dropout_seed=tf.stack([tf.constant(1234, tf.int64), step]),
            )
            loss, metrics = pretraining_loss(
                mlm_logits, nsp_logits, masked_lm_ids, masked_lm_weights, next_sentence_labels
            )
            scaled_loss = loss_scale.scale(loss)
        grads = loss_scale.unscale(tape.gradient(scaled_loss, variables))
        grads, global_norm = clip_by_global_norm(grads, 1.0)
        finite = tf.math.is_finite(global_norm)
        loss_scale.adjust(finite)
        learning_rate = learning_rate_tensor(
            step, base_learning_rate=2e-3, num_train_steps=100, num_warmup_steps=3
        )
        optimizer.apply_gradients(grads, learning_rate, should_apply=finite)
        return loss, metrics["masked_lm_accuracy"], global_norm

    losses = [float(train_step(tf.constant(step, tf.int64))[0]) for step in range(30)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses

    # Exact resume: restoring the state and replaying a step with the same
    # seed gives bit-identical weights.
    state = variables + list(optimizer.slots_by_name.values()) + list(loss_scale.variables_by_name.values())
    saved = [variable.numpy() for variable in state]
    train_step(tf.constant(30, tf.int64))
    after_first = [variable.numpy() for variable in state]
    for variable, value in zip(state, saved):
        variable.assign(value)
    train_step(tf.constant(30, tf.int64))
    for variable, value in zip(state, after_first):
        np.testing.assert_array_equal(variable.numpy(), value)
