"""The BERT model and its pretraining heads, in plain TensorFlow.

This follows Google's original ``modeling.py`` (google-research/bert) layer by
layer, and its variables carry exactly the names of Google's checkpoints, so a
checkpoint written from ``BertPretrainer.variables_by_name`` loads in Google's
code, in Hugging Face's converters and in FinBERT's tooling.

Unlike Google's code it is TF2 (eager and ``tf.function``) and uses no Keras at
all: the same code must run on TensorFlow 2.15 (Keras 2, which Horovod needs)
and 2.21 (Keras 3), and the whole training step must compile with
``tf.function(jit_compile=True)``. So weights are bare ``tf.Variable``s and
layers are small functions over them.

Two further differences from Google's code, both for training on GPUs:

* Dropout uses stateless random ops seeded from an explicit ``dropout_seed``,
  so a step replayed after a restart gives bit-identical results.
* ``compute_dtype`` (float16 or bfloat16) runs the matmuls in reduced
  precision while variables, LayerNorm statistics, softmax and logits stay
  float32.
"""

import math
import zlib

import tensorflow as tf

# BertConfig lives in the TF-free bert_config module; imported here for callers of modeling.
from bert_pretraining.bert_config import LAYER_NORM_EPSILON, BertConfig, variable_shapes  # noqa: F401
from bert_pretraining.errors import ConfigError

# Added to attention scores of padding positions, as in Google's code. The
# addition and the softmax run in float32, and -10000 is far inside float16's
# range (65504) anyway, so it is safe under mixed precision.
ATTENTION_MASK_ADDER = -10000.0

# The dtype each training precision computes in (weights stay float32).
COMPUTE_DTYPES = {"fp32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16}

# Random algorithm for initialisation and dropout. Named explicitly (instead
# of "auto_select") so CPU and GPU draw the same bits from the same seed.
_RNG_ALG = "philox"


# --------------------------------------------------------------------------
# Layers: small functions over variables
# --------------------------------------------------------------------------


def gelu(x):
    """Exact GELU, x * Phi(x) with the normal CDF via erf (Hugging Face's "gelu")."""
    return 0.5 * x * (1.0 + tf.math.erf(x / tf.cast(math.sqrt(2.0), x.dtype)))


def gelu_tanh(x):
    """The tanh approximation of GELU that Google's original BERT code uses."""
    cdf = 0.5 * (
        1.0
        + tf.tanh(
            tf.cast(math.sqrt(2.0 / math.pi), x.dtype)
            * (x + tf.cast(0.044715, x.dtype) * tf.pow(x, 3))
        )
    )
    return x * cdf


def get_activation(name):
    """Maps a config hidden_act to its function."""
    return {
        "gelu": gelu,
        "gelu_new": gelu_tanh,
        "gelu_tanh": gelu_tanh,
        "relu": tf.nn.relu,
    }[name]


def layer_norm(x, gamma, beta, output_dtype):
    """LayerNorm over the last axis, with statistics in float32 for stability."""
    x = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    normalized = (x - mean) * tf.math.rsqrt(variance + LAYER_NORM_EPSILON)
    return tf.cast(normalized * gamma + beta, output_dtype)


def dropout(x, rate, seed):
    """Inverted dropout from a stateless RNG: same seed, same mask, always."""
    if rate == 0.0:
        return x
    uniform = tf.random.stateless_uniform(tf.shape(x), seed=seed, alg=_RNG_ALG)
    return tf.where(uniform >= rate, x / tf.cast(1.0 - rate, x.dtype), tf.zeros_like(x))


def _shape_list(tensor):
    """Static dimensions where known, dynamic ones otherwise (as Google's get_shape_list)."""
    static = tensor.shape.as_list()
    dynamic = tf.shape(tensor)
    return [dim if dim is not None else dynamic[i] for i, dim in enumerate(static)]


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


class BertPretrainer(tf.Module):
    """BERT with Google's masked-LM and (optionally) next-sentence heads.

    All weights are float32 variables in ``self.variables_by_name``, an
    insertion-ordered dict keyed by Google's checkpoint names. The masked-LM
    decoder reuses ``bert/embeddings/word_embeddings`` (tied weights).
    """

    def __init__(self, config, *, use_next_sentence_prediction=True, seed=0):
        super().__init__(name="bert_pretrainer")
        if not isinstance(config, BertConfig):
            raise TypeError(f"config must be a BertConfig, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"model seed must be a non-negative integer, got {seed!r}")
        self.config = config
        self.use_next_sentence_prediction = bool(use_next_sentence_prediction)
        self.seed = seed
        # Built as a plain dict first and assigned once, so that tf.Module's
        # tracking wraps a finished mapping.
        self.variables_by_name = _create_variables(
            config, self.use_next_sentence_prediction, seed
        )

    # -- public -------------------------------------------------------------

    def __call__(
        self,
        input_ids,
        input_mask,
        segment_ids,
        masked_lm_positions,
        *,
        training,
        dropout_seed=None,
        compute_dtype=tf.float32,
    ):
        """Runs BERT and the pretraining heads.

        Args:
          input_ids, input_mask, segment_ids: int [batch, seq_length].
          masked_lm_positions: int [batch, max_predictions_per_seq].
          training: Python bool; dropout is applied only when True.
          dropout_seed: int32/int64 tensor of shape [2], required when
            training with non-zero dropout. Each dropout site draws from a
            seed derived from it, so equal seeds give bit-identical results.
          compute_dtype: tf.float32, tf.float16 or tf.bfloat16.

        Returns:
          (mlm_logits float32 [batch, max_predictions_per_seq, vocab_size],
           nsp_logits float32 [batch, 2], or None without next-sentence prediction)
        """
        compute_dtype = _check_compute_dtype(compute_dtype)
        seeds = _DropoutSeeds(dropout_seed) if training else None
        if training and seeds.seed is None and self._uses_dropout():
            raise ValueError("training=True with dropout needs a dropout_seed of shape [2]")

        input_ids = tf.cast(input_ids, tf.int32)
        segment_ids = tf.cast(segment_ids, tf.int32)
        masked_lm_positions = tf.cast(masked_lm_positions, tf.int32)

        sequence_output = self._encode(
            input_ids, input_mask, segment_ids, seeds, compute_dtype
        )
        mlm_logits = self._masked_lm_logits(
            sequence_output, masked_lm_positions, compute_dtype
        )
        nsp_logits = None
        if self.use_next_sentence_prediction:
            nsp_logits = self._next_sentence_logits(sequence_output, compute_dtype)
        return mlm_logits, nsp_logits

    # -- encoder ------------------------------------------------------------

    def _encode(self, input_ids, input_mask, segment_ids, seeds, compute_dtype):
        """Embeddings and the transformer stack; returns [batch, seq, hidden]."""
        batch_size, seq_length = _shape_list(input_ids)
        hidden = self._embeddings(input_ids, segment_ids, seeds, compute_dtype)
        attention_adder = _attention_mask_adder(input_mask)
        # Google reshapes to 2D once so every dense layer is a plain matmul.
        hidden = tf.reshape(hidden, [-1, self.config.hidden_size])
        for layer_index in range(self.config.num_hidden_layers):
            hidden = self._transformer_layer(
                hidden,
                attention_adder,
                batch_size,
                seq_length,
                f"bert/encoder/layer_{layer_index}",
                seeds,
                compute_dtype,
            )
        return tf.reshape(hidden, [batch_size, seq_length, self.config.hidden_size])

    def _embeddings(self, input_ids, segment_ids, seeds, compute_dtype):
        """Word + token type + position embeddings, LayerNorm, dropout."""
        v = self.variables_by_name
        _, seq_length = _shape_list(input_ids)
        if isinstance(seq_length, int) and seq_length > self.config.max_position_embeddings:
            raise ConfigError(
                f"sequence length {seq_length} exceeds the model's "
                f"max_position_embeddings ({self.config.max_position_embeddings})"
            )
        # Embedding sums stay float32: they are cheap and feed LayerNorm.
        output = tf.gather(v["bert/embeddings/word_embeddings"], input_ids)
        # Google uses a one-hot matmul for the tiny token type vocabulary.
        token_types = tf.one_hot(segment_ids, depth=self.config.type_vocab_size)
        output += tf.einsum(
            "bst,th->bsh", token_types, v["bert/embeddings/token_type_embeddings"]
        )
        positions = v["bert/embeddings/position_embeddings"][:seq_length]
        output += positions[tf.newaxis, :, :]
        output = self._layer_norm(output, "bert/embeddings/LayerNorm", compute_dtype)
        return self._dropout(output, self.config.hidden_dropout_prob, seeds)

    def _transformer_layer(
        self, hidden, attention_adder, batch_size, seq_length, scope, seeds, compute_dtype
    ):
        """One post-LN transformer layer on a [batch*seq, hidden] tensor."""
        act = get_activation(self.config.hidden_act)
        attention = self._self_attention(
            hidden, attention_adder, batch_size, seq_length, scope, seeds, compute_dtype
        )
        attention = self._dense(attention, f"{scope}/attention/output/dense", compute_dtype)
        attention = self._dropout(attention, self.config.hidden_dropout_prob, seeds)
        hidden = self._add_and_norm(
            attention, hidden, f"{scope}/attention/output/LayerNorm", compute_dtype
        )
        intermediate = act(self._dense(hidden, f"{scope}/intermediate/dense", compute_dtype))
        output = self._dense(intermediate, f"{scope}/output/dense", compute_dtype)
        output = self._dropout(output, self.config.hidden_dropout_prob, seeds)
        return self._add_and_norm(output, hidden, f"{scope}/output/LayerNorm", compute_dtype)

    def _self_attention(
        self, hidden, attention_adder, batch_size, seq_length, scope, seeds, compute_dtype
    ):
        """Multi-head scaled dot-product self-attention; returns [batch*seq, hidden]."""
        heads = self.config.num_attention_heads
        head_size = self.config.attention_head_size

        def split_heads(tensor):
            tensor = tf.reshape(tensor, [batch_size, seq_length, heads, head_size])
            return tf.transpose(tensor, [0, 2, 1, 3])

        query = self._dense(hidden, f"{scope}/attention/self/query", compute_dtype)
        key = self._dense(hidden, f"{scope}/attention/self/key", compute_dtype)
        value = self._dense(hidden, f"{scope}/attention/self/value", compute_dtype)
        # Scaling the query before the matmul (not the scores after, as Google
        # does) is the same maths but keeps float16 scores further from overflow.
        query = query * tf.cast(1.0 / math.sqrt(head_size), compute_dtype)
        scores = tf.matmul(split_heads(query), split_heads(key), transpose_b=True)
        # Masking and softmax in float32 for numerical safety.
        scores = tf.cast(scores, tf.float32) + attention_adder
        probs = tf.cast(tf.nn.softmax(scores, axis=-1), compute_dtype)
        probs = self._dropout(probs, self.config.attention_probs_dropout_prob, seeds)
        context = tf.matmul(probs, split_heads(value))
        context = tf.transpose(context, [0, 2, 1, 3])
        return tf.reshape(context, [-1, heads * head_size])

    # -- heads --------------------------------------------------------------

    def _masked_lm_logits(self, sequence_output, positions, compute_dtype):
        """Google's get_masked_lm_output, up to the logits, at the masked positions only."""
        v = self.variables_by_name
        act = get_activation(self.config.hidden_act)
        batch_size, num_predictions = _shape_list(positions)
        selected = _gather_positions(sequence_output, positions)
        transformed = act(
            self._dense(selected, "cls/predictions/transform/dense", compute_dtype)
        )
        transformed = self._layer_norm(
            transformed, "cls/predictions/transform/LayerNorm", compute_dtype
        )
        # Decoder tied to the input embeddings; the matmul runs in
        # compute_dtype (it is the largest one), the logits are float32.
        logits = tf.matmul(
            transformed,
            tf.cast(v["bert/embeddings/word_embeddings"], compute_dtype),
            transpose_b=True,
        )
        logits = tf.cast(logits, tf.float32) + v["cls/predictions/output_bias"]
        return tf.reshape(logits, [batch_size, num_predictions, self.config.vocab_size])

    def _next_sentence_logits(self, sequence_output, compute_dtype):
        """Pooler (tanh dense on [CLS]) and Google's 2-way seq_relationship classifier."""
        v = self.variables_by_name
        first_token = sequence_output[:, 0, :]
        pooled = tf.tanh(self._dense(first_token, "bert/pooler/dense", compute_dtype))
        logits = tf.matmul(
            pooled,
            tf.cast(v["cls/seq_relationship/output_weights"], compute_dtype),
            transpose_b=True,
        )
        return tf.cast(logits, tf.float32) + v["cls/seq_relationship/output_bias"]

    # -- building blocks bound to this model's variables --------------------

    def _dense(self, x, scope, compute_dtype):
        v = self.variables_by_name
        x = tf.cast(x, compute_dtype)
        kernel = tf.cast(v[f"{scope}/kernel"], compute_dtype)
        bias = tf.cast(v[f"{scope}/bias"], compute_dtype)
        return tf.matmul(x, kernel) + bias

    def _layer_norm(self, x, scope, compute_dtype):
        v = self.variables_by_name
        return layer_norm(x, v[f"{scope}/gamma"], v[f"{scope}/beta"], compute_dtype)

    def _add_and_norm(self, x, residual, scope, compute_dtype):
        # The residual sum is taken in float32 so reduced precision does not
        # accumulate along the residual stream before normalisation.
        total = tf.cast(x, tf.float32) + tf.cast(residual, tf.float32)
        return self._layer_norm(total, scope, compute_dtype)

    def _dropout(self, x, rate, seeds):
        if seeds is None or rate == 0.0:
            return x
        return dropout(x, rate, seeds.next())

    def _uses_dropout(self):
        return (
            self.config.hidden_dropout_prob > 0.0
            or self.config.attention_probs_dropout_prob > 0.0
        )


class _DropoutSeeds:
    """Hands out one seed per dropout site, derived from the step's seed.

    Sites are numbered in the order the forward pass reaches them, which is
    fixed by the architecture, so site k gets the same seed on every replay.
    """

    def __init__(self, seed):
        self.seed = None if seed is None else tf.convert_to_tensor(seed)
        if self.seed is not None and (
            not self.seed.dtype.is_integer or self.seed.shape.as_list() != [2]
        ):
            raise ValueError(
                f"dropout_seed must be an integer tensor of shape [2], "
                f"got {self.seed.dtype.name} {self.seed.shape}"
            )
        self._site = 0

    def next(self):
        site = tf.constant(self._site, dtype=self.seed.dtype)
        self._site += 1
        return tf.random.experimental.stateless_fold_in(self.seed, site, alg=_RNG_ALG)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _create_variables(config, use_next_sentence_prediction, seed):
    """Creates all weights in Google's checkpoint order, with Google's names."""
    shapes = variable_shapes(config, use_next_sentence_prediction)
    return {
        name: tf.Variable(
            _initial_value(name, kind, shape, seed, config.initializer_range),
            name=name,
            trainable=True,
        )
        for name, (kind, shape) in shapes.items()
    }


def _initial_value(name, kind, shape, seed, stddev):
    """A weight's initial value, a function of (seed, name) only.

    Seeding each weight from its own name keeps the other weights unchanged
    when the model gains or loses a part (e.g. the NSP head). Values are drawn
    on the CPU so every device and worker starts from identical weights.
    """
    if kind == "ones":
        return tf.ones(shape, tf.float32)
    if kind == "zeros":
        return tf.zeros(shape, tf.float32)
    with tf.device("/CPU:0"):
        return tf.random.stateless_truncated_normal(
            shape,
            seed=tf.constant([seed, zlib.crc32(name.encode("utf-8"))], tf.int64),
            stddev=stddev,
            dtype=tf.float32,
            alg=_RNG_ALG,
        )


def _attention_mask_adder(input_mask):
    """[batch, seq] 1/0 mask -> float32 [batch, 1, 1, seq] to add to scores."""
    mask = tf.cast(input_mask, tf.float32)
    return (1.0 - mask)[:, tf.newaxis, tf.newaxis, :] * ATTENTION_MASK_ADDER


def _gather_positions(sequence_output, positions):
    """Rows of [batch, seq, hidden] at [batch, n] positions -> [batch*n, hidden]."""
    batch_size, seq_length, width = _shape_list(sequence_output)
    offsets = tf.reshape(tf.range(batch_size, dtype=tf.int32) * seq_length, [-1, 1])
    flat_positions = tf.reshape(positions + offsets, [-1])
    flat_sequence = tf.reshape(sequence_output, [-1, width])
    return tf.gather(flat_sequence, flat_positions)


def _check_compute_dtype(compute_dtype):
    dtype = tf.as_dtype(compute_dtype)
    if dtype not in COMPUTE_DTYPES.values():
        raise ConfigError(
            f"compute dtype must be one of float32, float16, bfloat16, got {dtype.name}"
        )
    return dtype


# --------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------


def pretraining_loss(
    mlm_logits, nsp_logits, masked_lm_ids, masked_lm_weights, next_sentence_labels
):
    """Google's pretraining loss and metrics.

    Args:
      mlm_logits: float32 [batch, max_predictions_per_seq, vocab_size].
      nsp_logits: float32 [batch, 2], or None without next-sentence prediction.
      masked_lm_ids: int [batch, max_predictions_per_seq].
      masked_lm_weights: float [batch, max_predictions_per_seq]; 1 for real
        predictions, 0 for padding.
      next_sentence_labels: int [batch] or [batch, 1]; ignored when
        nsp_logits is None.

    Returns:
      (total_loss, metrics). total_loss = masked-LM loss + next-sentence loss
      (Google's formulas; the latter left out without NSP). metrics holds
      float32 scalars, named as in Google's evaluation (metrics.TABLE):

      * ``masked_lm_loss``: sum(w * xent) / (sum(w) + 1e-5), the training
        loss term.
      * ``masked_lm_accuracy``: sum(w * correct) / sum(w) (0 when sum(w) is 0).
      * ``mlm_loss_sum``, ``mlm_correct_sum``, ``mlm_weight_sum``: the
        weighted sums behind them. Summed over many batches, loss_sum /
        weight_sum and correct_sum / weight_sum give the exact evaluation
        means (Google's weighted tf.metrics.mean / accuracy), whatever the
        number of predictions per batch (metrics.heldout_means).

      With NSP only:

      * ``next_sentence_loss``: mean cross-entropy; ``next_sentence_accuracy``:
        mean correctness.
      * ``nsp_loss_sum``, ``nsp_correct_sum``, ``nsp_example_count``: sums
        for exact evaluation likewise.
    """
    mlm_logits = tf.cast(mlm_logits, tf.float32)
    vocab_size = _shape_list(mlm_logits)[-1]
    logits = tf.reshape(mlm_logits, [-1, vocab_size])
    label_ids = tf.reshape(tf.cast(masked_lm_ids, tf.int32), [-1])
    label_weights = tf.reshape(tf.cast(masked_lm_weights, tf.float32), [-1])

    per_example_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=label_ids, logits=logits
    )
    correct = tf.cast(
        tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), label_ids), tf.float32
    )
    mlm_loss_sum = tf.reduce_sum(label_weights * per_example_loss)
    mlm_weight_sum = tf.reduce_sum(label_weights)
    mlm_correct_sum = tf.reduce_sum(label_weights * correct)
    mlm_loss = mlm_loss_sum / (mlm_weight_sum + 1e-5)
    metrics = {
        "masked_lm_loss": mlm_loss,
        "masked_lm_accuracy": tf.math.divide_no_nan(mlm_correct_sum, mlm_weight_sum),
        "mlm_loss_sum": mlm_loss_sum,
        "mlm_correct_sum": mlm_correct_sum,
        "mlm_weight_sum": mlm_weight_sum,
    }
    if nsp_logits is None:
        return mlm_loss, metrics

    nsp_logits = tf.cast(nsp_logits, tf.float32)
    labels = tf.reshape(tf.cast(next_sentence_labels, tf.int32), [-1])
    nsp_per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=nsp_logits
    )
    nsp_correct = tf.cast(
        tf.equal(tf.argmax(nsp_logits, axis=-1, output_type=tf.int32), labels), tf.float32
    )
    nsp_loss = tf.reduce_mean(nsp_per_example)
    metrics.update(
        {
            "next_sentence_loss": nsp_loss,
            "next_sentence_accuracy": tf.reduce_mean(nsp_correct),
            "nsp_loss_sum": tf.reduce_sum(nsp_per_example),
            "nsp_correct_sum": tf.reduce_sum(nsp_correct),
            "nsp_example_count": tf.cast(tf.size(labels), tf.float32),
        }
    )
    return mlm_loss + nsp_loss, metrics
