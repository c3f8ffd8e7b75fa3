"""Tests of the BERT model, its config and the pretraining loss (tiny models, CPU)."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from bert_pretraining.errors import ConfigError
from bert_pretraining.modeling import (
    BertConfig,
    BertPretrainer,
    gelu,
    gelu_tanh,
    pretraining_loss,
)

BATCH, SEQ, PREDICTIONS, VOCAB = 4, 16, 3, 100


def tiny_config(**overrides):
    values = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    values.update(overrides)
    return BertConfig(**values)


def tiny_batch(seed=0):
    """A fixed batch; the last 4 positions are padding."""
    rng = np.random.default_rng(seed)
    input_mask = np.ones((BATCH, SEQ), np.int32)
    input_mask[:, 12:] = 0
    segment_ids = np.zeros((BATCH, SEQ), np.int32)
    segment_ids[:, 6:12] = 1
    return dict(
        input_ids=rng.integers(0, VOCAB, (BATCH, SEQ)) * input_mask,
        input_mask=input_mask,
        segment_ids=segment_ids,
        masked_lm_positions=rng.integers(1, 12, (BATCH, PREDICTIONS)),
    )


SEED = tf.constant([3, 4], tf.int64)

LAYER_VARIABLES = [
    "attention/self/query/kernel",
    "attention/self/query/bias",
    "attention/self/key/kernel",
    "attention/self/key/bias",
    "attention/self/value/kernel",
    "attention/self/value/bias",
    "attention/output/dense/kernel",
    "attention/output/dense/bias",
    "attention/output/LayerNorm/gamma",
    "attention/output/LayerNorm/beta",
    "intermediate/dense/kernel",
    "intermediate/dense/bias",
    "output/dense/kernel",
    "output/dense/bias",
    "output/LayerNorm/gamma",
    "output/LayerNorm/beta",
]

EXPECTED_NAMES = (
    [
        "bert/embeddings/word_embeddings",
        "bert/embeddings/token_type_embeddings",
        "bert/embeddings/position_embeddings",
        "bert/embeddings/LayerNorm/gamma",
        "bert/embeddings/LayerNorm/beta",
    ]
    + [f"bert/encoder/layer_0/{name}" for name in LAYER_VARIABLES]
    + [f"bert/encoder/layer_1/{name}" for name in LAYER_VARIABLES]
    + [
        "bert/pooler/dense/kernel",
        "bert/pooler/dense/bias",
        "cls/predictions/transform/dense/kernel",
        "cls/predictions/transform/dense/bias",
        "cls/predictions/transform/LayerNorm/gamma",
        "cls/predictions/transform/LayerNorm/beta",
        "cls/predictions/output_bias",
        "cls/seq_relationship/output_weights",
        "cls/seq_relationship/output_bias",
    ]
)


@pytest.fixture(scope="module")
def model():
    return BertPretrainer(tiny_config(initializer_range=0.1), seed=1)


# -- config -------------------------------------------------------------------


def test_config_defaults_are_bert_base():
    config = BertConfig(vocab_size=30522)
    assert config.to_dict() == {
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
    }


def test_config_json_round_trip(tmp_path):
    config = tiny_config(hidden_act="gelu_new", hidden_dropout_prob=0)
    path = tmp_path / "bert_config.json"
    config.to_json_file(path)
    text = path.read_text()
    assert text.endswith("\n")
    assert list(json.loads(text)) == sorted(config.to_dict())
    assert BertConfig.from_json_file(path) == config
    assert BertConfig.from_dict(config.to_dict()) == config


def test_config_reads_googles_multilingual_file(tmp_path):
    # Google's released configs carry informational pooler_* keys.
    values = BertConfig(vocab_size=119547).to_dict()
    values.update(directionality="bidi", pooler_type="first_token_transform", pooler_fc_size=768)
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps(values))
    assert BertConfig.from_json_file(path).vocab_size == 119547


@pytest.mark.parametrize(
    "overrides, words",
    [
        (dict(hidden_size=30, num_attention_heads=4), ["hidden_size (30)", "num_attention_heads (4)", "divisible"]),
        (dict(hidden_act="swish"), ["hidden_act", "gelu, gelu_new, gelu_tanh, relu", "'swish'"]),
        (dict(num_hidden_layers=0), ["num_hidden_layers", "positive integer", "0"]),
        (dict(vocab_size=-5), ["vocab_size", "positive integer"]),
        (dict(intermediate_size=64.0), ["intermediate_size", "positive integer"]),
        (dict(hidden_dropout_prob=1.0), ["hidden_dropout_prob", "[0, 1)"]),
        (dict(attention_probs_dropout_prob="0.1"), ["attention_probs_dropout_prob", "number"]),
        (dict(initializer_range=0.0), ["initializer_range", "positive"]),
    ],
)
def test_config_validation_names_field_and_expectation(overrides, words):
    with pytest.raises(ConfigError) as error:
        tiny_config(**overrides)
    for word in words:
        assert word in str(error.value)


def test_config_from_dict_rejects_unknown_and_missing_fields():
    with pytest.raises(ConfigError, match="unknown field.*'hidden_szie'.*expected only: vocab_size"):
        BertConfig.from_dict({"vocab_size": 10, "hidden_szie": 8})
    with pytest.raises(ConfigError, match="missing required field 'vocab_size'"):
        BertConfig.from_dict({"hidden_size": 8})
    with pytest.raises(ConfigError, match="expected a mapping"):
        BertConfig.from_dict([1, 2])


def test_config_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigError, match="missing.json: cannot read"):
        BertConfig.from_json_file(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json: not a valid JSON"):
        BertConfig.from_json_file(broken)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"vocab_size": 10, "hidden_act": "tanh"}))
    with pytest.raises(ConfigError, match="bad.json: bert config: hidden_act"):
        BertConfig.from_json_file(bad)


# -- variables ----------------------------------------------------------------


def test_variable_names_are_googles_in_order():
    model = BertPretrainer(tiny_config())
    assert list(model.variables_by_name) == EXPECTED_NAMES
    for name, variable in model.variables_by_name.items():
        assert variable.dtype == tf.float32, name
        assert variable.trainable, name
    assert len(model.trainable_variables) == len(EXPECTED_NAMES)


def test_without_nsp_there_is_no_seq_relationship_head():
    model = BertPretrainer(tiny_config(), use_next_sentence_prediction=False)
    assert list(model.variables_by_name) == EXPECTED_NAMES[:-2]


def test_variable_shapes_follow_google():
    config = tiny_config(type_vocab_size=3)
    v = BertPretrainer(config).variables_by_name
    hidden, inner = config.hidden_size, config.intermediate_size
    expected = {
        "bert/embeddings/word_embeddings": [VOCAB, hidden],
        "bert/embeddings/token_type_embeddings": [3, hidden],
        "bert/embeddings/position_embeddings": [32, hidden],
        "bert/embeddings/LayerNorm/gamma": [hidden],
        "bert/encoder/layer_1/attention/self/query/kernel": [hidden, hidden],
        "bert/encoder/layer_1/attention/self/query/bias": [hidden],
        "bert/encoder/layer_0/intermediate/dense/kernel": [hidden, inner],
        "bert/encoder/layer_0/intermediate/dense/bias": [inner],
        "bert/encoder/layer_0/output/dense/kernel": [inner, hidden],
        "bert/pooler/dense/kernel": [hidden, hidden],
        "cls/predictions/transform/dense/kernel": [hidden, hidden],
        "cls/predictions/output_bias": [VOCAB],
        "cls/seq_relationship/output_weights": [2, hidden],
        "cls/seq_relationship/output_bias": [2],
    }
    for name, shape in expected.items():
        assert v[name].shape.as_list() == shape, name


def test_initialisation_is_deterministic_and_googles():
    first = BertPretrainer(tiny_config(), seed=5).variables_by_name
    again = BertPretrainer(tiny_config(), seed=5).variables_by_name
    other = BertPretrainer(tiny_config(), seed=6).variables_by_name
    without_nsp = BertPretrainer(tiny_config(), seed=5, use_next_sentence_prediction=False)
    for name in first:
        np.testing.assert_array_equal(first[name].numpy(), again[name].numpy())
        if name in without_nsp.variables_by_name:
            # Seeds come from names, so dropping a head changes no other weight.
            np.testing.assert_array_equal(
                first[name].numpy(), without_nsp.variables_by_name[name].numpy()
            )
    kernel = first["bert/encoder/layer_0/intermediate/dense/kernel"].numpy()
    assert not np.array_equal(kernel, other["bert/encoder/layer_0/intermediate/dense/kernel"].numpy())
    # Truncated normal, stddev 0.02, cut at two standard deviations.
    assert np.abs(kernel).max() <= 0.04
    assert 0.012 < kernel.std() < 0.02
    np.testing.assert_array_equal(first["bert/embeddings/LayerNorm/gamma"].numpy(), 1.0)
    np.testing.assert_array_equal(first["bert/embeddings/LayerNorm/beta"].numpy(), 0.0)
    np.testing.assert_array_equal(first["bert/pooler/dense/bias"].numpy(), 0.0)
    np.testing.assert_array_equal(first["cls/predictions/output_bias"].numpy(), 0.0)


# -- forward pass -------------------------------------------------------------


def test_output_shapes_and_dtypes(model):
    mlm_logits, nsp_logits = model(**tiny_batch(), training=False)
    assert mlm_logits.shape == (BATCH, PREDICTIONS, VOCAB)
    assert nsp_logits.shape == (BATCH, 2)
    assert mlm_logits.dtype == nsp_logits.dtype == tf.float32
    no_nsp = BertPretrainer(tiny_config(), use_next_sentence_prediction=False)
    mlm_logits, nsp_logits = no_nsp(**tiny_batch(), training=False)
    assert mlm_logits.shape == (BATCH, PREDICTIONS, VOCAB)
    assert nsp_logits is None


def test_mlm_logits_are_those_of_the_gathered_positions(model):
    batch = tiny_batch()
    mlm_logits, _ = model(**batch, training=False)
    reversed_batch = dict(batch, masked_lm_positions=batch["masked_lm_positions"][:, ::-1])
    reversed_logits, _ = model(**reversed_batch, training=False)
    np.testing.assert_allclose(reversed_logits.numpy(), mlm_logits.numpy()[:, ::-1], atol=1e-6)


def test_padding_is_masked_out_of_attention(model):
    batch = tiny_batch()
    changed = dict(batch, input_ids=batch["input_ids"].copy())
    changed["input_ids"][:, 12:] = 7  # only padding positions differ
    expected = model(**batch, training=False)
    actual = model(**changed, training=False)
    for left, right in zip(expected, actual):
        np.testing.assert_allclose(left.numpy(), right.numpy(), atol=1e-6)


def test_dropout_is_a_function_of_the_seed(model):
    batch = tiny_batch()
    first = model(**batch, training=True, dropout_seed=SEED)
    again = model(**batch, training=True, dropout_seed=tf.constant([3, 4], tf.int64))
    other = model(**batch, training=True, dropout_seed=tf.constant([3, 5], tf.int64))
    evaluation = model(**batch, training=False)
    evaluation_with_seed = model(**batch, training=False, dropout_seed=SEED)
    for a, b, c, d, e in zip(first, again, other, evaluation, evaluation_with_seed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # bit-identical
        assert not np.allclose(a.numpy(), c.numpy())
        assert not np.allclose(a.numpy(), d.numpy())
        np.testing.assert_array_equal(d.numpy(), e.numpy())  # no dropout


def test_dropout_is_deterministic_inside_a_compiled_function(model):
    @tf.function(jit_compile=True)
    def forward(seed):
        return model(**tiny_batch(), training=True, dropout_seed=seed)[0]

    np.testing.assert_array_equal(forward(SEED).numpy(), forward(SEED).numpy())
    assert not np.allclose(forward(SEED).numpy(), forward(SEED + 1).numpy())


def test_training_with_dropout_needs_a_seed(model):
    with pytest.raises(ValueError, match="dropout_seed"):
        model(**tiny_batch(), training=True)
    with pytest.raises(ValueError, match="shape \\[2\\]"):
        model(**tiny_batch(), training=True, dropout_seed=tf.constant([1, 2, 3]))
    no_dropout = BertPretrainer(
        tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    )
    no_dropout(**tiny_batch(), training=True)  # nothing to seed


@pytest.mark.parametrize("compute_dtype, tolerance", [(tf.float16, 0.01), (tf.bfloat16, 0.03)])
def test_mixed_precision_is_close_to_float32(model, compute_dtype, tolerance):
    batch = tiny_batch()
    reference = model(**batch, training=False)
    mixed = model(**batch, training=False, compute_dtype=compute_dtype)
    for expected, actual in zip(reference, mixed):
        assert actual.dtype == tf.float32
        scale = np.abs(expected.numpy()).max()
        assert np.abs(expected.numpy() - actual.numpy()).max() <= tolerance * scale
    for variable in model.variables_by_name.values():
        assert variable.dtype == tf.float32


def test_unsupported_compute_dtype_is_a_config_error(model):
    with pytest.raises(ConfigError, match="float32, float16, bfloat16.*float64"):
        model(**tiny_batch(), training=False, compute_dtype=tf.float64)


def test_sequence_longer_than_position_table_is_a_config_error():
    small = BertPretrainer(tiny_config(max_position_embeddings=8))
    with pytest.raises(ConfigError, match="sequence length 16 exceeds.*max_position_embeddings \\(8\\)"):
        small(**tiny_batch(), training=False)


def test_activations():
    x = np.linspace(-6, 6, 101).astype(np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(gelu(tf.constant(x)).numpy(), exact, atol=1e-6)
    np.testing.assert_allclose(gelu_tanh(tf.constant(x)).numpy(), exact, atol=1e-3)
    assert not np.allclose(gelu_tanh(tf.constant(x)).numpy(), exact, atol=1e-6)


# -- loss ---------------------------------------------------------------------


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_pretraining_loss_matches_googles_formulas():
    rng = np.random.default_rng(1)
    mlm_logits = rng.normal(size=(BATCH, PREDICTIONS, VOCAB)).astype(np.float32)
    nsp_logits = rng.normal(size=(BATCH, 2)).astype(np.float32)
    ids = rng.integers(0, VOCAB, (BATCH, PREDICTIONS))
    ids[0, 0] = mlm_logits[0, 0].argmax()  # at least one correct prediction
    weights = np.ones((BATCH, PREDICTIONS), np.float32)
    weights[1, 2] = weights[3, 1:] = 0.0
    labels = rng.integers(0, 2, (BATCH, 1))

    total, metrics = pretraining_loss(mlm_logits, nsp_logits, ids, weights, labels)

    per_example = -np.take_along_axis(_log_softmax(mlm_logits), ids[..., None], -1)[..., 0]
    mlm_loss = (weights * per_example).sum() / (weights.sum() + 1e-5)
    nsp_per_example = -np.take_along_axis(_log_softmax(nsp_logits), labels, -1)[:, 0]
    mlm_correct = (mlm_logits.argmax(-1) == ids) * weights
    nsp_correct = nsp_logits.argmax(-1) == labels[:, 0]
    expected = {
        "masked_lm_loss": mlm_loss,
        "masked_lm_accuracy": mlm_correct.sum() / weights.sum(),
        "mlm_loss_sum": (weights * per_example).sum(),
        "mlm_correct_sum": mlm_correct.sum(),
        "mlm_weight_sum": weights.sum(),
        "next_sentence_loss": nsp_per_example.mean(),
        "next_sentence_accuracy": nsp_correct.mean(),
        "nsp_loss_sum": nsp_per_example.sum(),
        "nsp_correct_sum": nsp_correct.sum(),
        "nsp_example_count": BATCH,
    }
    assert sorted(metrics) == sorted(expected)
    for name, value in expected.items():
        assert metrics[name].shape == () and metrics[name].dtype == tf.float32
        np.testing.assert_allclose(metrics[name].numpy(), value, rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(total.numpy(), mlm_loss + nsp_per_example.mean(), rtol=1e-5)
    assert metrics["mlm_correct_sum"].numpy() >= 1


def test_pretraining_loss_without_nsp_is_the_mlm_loss():
    rng = np.random.default_rng(2)
    mlm_logits = rng.normal(size=(BATCH, PREDICTIONS, VOCAB)).astype(np.float32)
    ids = rng.integers(0, VOCAB, (BATCH, PREDICTIONS))
    weights = np.ones((BATCH, PREDICTIONS), np.float32)
    total, metrics = pretraining_loss(mlm_logits, None, ids, weights, None)
    assert sorted(metrics) == [
        "masked_lm_accuracy", "masked_lm_loss", "mlm_correct_sum", "mlm_loss_sum", "mlm_weight_sum"
    ]
    assert total.numpy() == metrics["masked_lm_loss"].numpy()


def test_pretraining_loss_with_no_predictions_is_zero_not_nan():
    mlm_logits = np.zeros((1, PREDICTIONS, VOCAB), np.float32)
    weights = np.zeros((1, PREDICTIONS), np.float32)
    total, metrics = pretraining_loss(mlm_logits, None, np.zeros((1, PREDICTIONS)), weights, None)
    assert total.numpy() == 0.0
    assert metrics["masked_lm_accuracy"].numpy() == 0.0
