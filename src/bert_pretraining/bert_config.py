"""A BERT model's hyperparameters and variables, without TensorFlow.

``BertConfig`` is Google's ``bert_config.json`` as a small class. The three
spellings of the activation live here too, because they disagree:

============================  ==============  ==================  ==============
function                      this project    Google's BERT        Transformers
============================  ==============  ==================  ==============
exact GELU, x * Phi(x)        ``gelu``        (none)              ``gelu``
tanh approximation of GELU    ``gelu_tanh``   ``gelu``            ``gelu_new``,
                              ``gelu_new``                        ``gelu_pytorch_tanh``,
                                                                  ``gelu_fast``
ReLU                          ``relu``        ``relu``            ``relu``
============================  ==============  ==================  ==============

``variable_shapes`` lists the model's variables under the names of Google's
checkpoints; the model creates them from it and the checks of a source
model (``source_model``) compare against it, without building a model.
"""

import dataclasses
import json
import math
import re

from bert_pretraining.errors import ConfigError
from bert_pretraining.files import write_json

# Ours -> the function it computes.
ACTIVATION_FUNCTIONS = {
    "gelu": "exact GELU",
    "gelu_new": "tanh approximation of GELU",
    "gelu_tanh": "tanh approximation of GELU",
    "relu": "ReLU",
}
HIDDEN_ACTIVATIONS = tuple(ACTIVATION_FUNCTIONS)

# Ours -> Transformers' ACT2FN name.
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_tanh": "gelu_new", "relu": "relu"}
# Transformers' -> ours: every ACT2FN name of a function we compute.
ACTIVATIONS_FROM_HF = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "relu": "relu",
}
# Ours -> Google's bert_config.json. Google's code has no exact GELU: an
# exact-GELU model is written as "gelu_exact", which Google's get_activation
# refuses instead of silently computing the tanh form.
GOOGLE_ACTIVATIONS = {"gelu": "gelu_exact", "gelu_new": "gelu", "gelu_tanh": "gelu", "relu": "relu"}
ACTIVATIONS_FROM_GOOGLE = {"gelu": "gelu_tanh", "gelu_exact": "gelu", "relu": "relu"}

# The keys that give the model's shape (the rest are dropout rates).
ARCHITECTURE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
)

# The pretraining heads, by the prefixes of their variables; everything else is the encoder.
HEADS = {
    "masked-LM head": ("cls/predictions/",),
    "next-sentence head": ("bert/pooler/", "cls/seq_relationship/"),
}

# Google's contrib layer_norm default, which its checkpoints were trained with.
LAYER_NORM_EPSILON = 1e-12

# Informational keys in Google's released bert_config.json files (the
# multilingual ones) that the model does not use; accepted and dropped so
# those files load, while any other unknown key is reported as a likely typo.
_IGNORED_CONFIG_KEYS = frozenset(
    {
        "directionality",
        "pooler_fc_size",
        "pooler_num_attention_heads",
        "pooler_num_fc_layers",
        "pooler_size_per_head",
        "pooler_type",
    }
)


@dataclasses.dataclass
class BertConfig:
    """The hyperparameters of a BERT model, as in Google's bert_config.json."""

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02

    def __post_init__(self):
        self._validate()

    @classmethod
    def from_dict(cls, values, *, google_names=False):
        """Builds a config from a dict such as a parsed bert_config.json.

        ``google_names``: hidden_act is spelled as Google's code spells it
        (a released model's or our export's tf/bert_config.json).
        """
        if not isinstance(values, dict):
            raise ConfigError(
                f"bert config: expected a mapping of field names to values, "
                f"got {type(values).__name__}"
            )
        field_names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(field_names) - _IGNORED_CONFIG_KEYS)
        if unknown:
            raise ConfigError(
                f"bert config: unknown field(s) {', '.join(map(repr, unknown))}; "
                f"expected only: {', '.join(field_names)}"
            )
        if "vocab_size" not in values:
            raise ConfigError("bert config: missing required field 'vocab_size'")
        fields = {name: values[name] for name in field_names if name in values}
        if google_names and "hidden_act" in fields:
            fields["hidden_act"] = activation_from(fields["hidden_act"], ACTIVATIONS_FROM_GOOGLE, "Google", "bert config")
        return cls(**fields)

    @classmethod
    def from_json_file(cls, path, *, google_names=False):
        """Reads a bert_config.json file; problems name the file."""
        try:
            with open(path, encoding="utf-8") as stream:
                values = json.load(stream)
        except OSError as error:
            raise ConfigError(f"{path}: cannot read BERT config: {error.strerror}") from error
        except (ValueError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not a valid JSON BERT config: {error}") from error
        try:
            return cls.from_dict(values, google_names=google_names)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from error

    def to_dict(self):
        """Returns the fields as a plain dict."""
        return dataclasses.asdict(self)

    def to_json_file(self, path, *, google_names=False):
        """Writes the config in bert_config.json layout (Google's: sorted, indent 2).

        ``google_names``: hidden_act as Google's code reads it (the export's tf/).
        """
        values = self.to_dict()
        if google_names:
            values["hidden_act"] = GOOGLE_ACTIVATIONS[self.hidden_act]
        write_json(path, values, sort_keys=True)

    @property
    def attention_head_size(self):
        return self.hidden_size // self.num_attention_heads

    def _validate(self):
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            value = getattr(self, name)
            # bool is an int subclass; "hidden_size: true" is surely a mistake.
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(
                    f"bert config: {name} must be a positive integer, got {value!r}"
                )
        if self.hidden_size % self.num_attention_heads != 0:
            raise ConfigError(
                f"bert config: hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.hidden_act not in HIDDEN_ACTIVATIONS:
            raise ConfigError(
                f"bert config: hidden_act must be one of "
                f"{', '.join(HIDDEN_ACTIVATIONS)}, got {self.hidden_act!r}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = _as_float(name, getattr(self, name))
            if not 0.0 <= value < 1.0:
                raise ConfigError(
                    f"bert config: {name} must be in [0, 1), got {value!r}"
                )
            setattr(self, name, value)
        value = _as_float("initializer_range", self.initializer_range)
        if not value > 0.0:
            raise ConfigError(
                f"bert config: initializer_range must be a positive number, got {value!r}"
            )
        self.initializer_range = value


def _as_float(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"bert config: {name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"bert config: {name} must be finite, got {value!r}")
    return value


def activation_from(name, table, convention, where):
    """Our hidden_act for a name in another convention; an unknown one is a ConfigError naming ``where``."""
    if name not in table:
        raise ConfigError(
            f"{where}: hidden_act {name!r} is not an activation this project computes; "
            f"expected one of {', '.join(sorted(table))} ({convention}'s names)"
        )
    return table[name]


def variable_shapes(config, use_next_sentence_prediction):
    """Every model variable in Google's checkpoint order: name -> (initialiser, shape)."""
    hidden = config.hidden_size
    shapes = {}

    def weight(name, shape):
        shapes[name] = ("normal", shape)

    def zeros(name, shape):
        shapes[name] = ("zeros", shape)

    def dense(scope, fan_in, fan_out):
        weight(f"{scope}/kernel", [fan_in, fan_out])
        zeros(f"{scope}/bias", [fan_out])

    def norm(scope):
        shapes[f"{scope}/gamma"] = ("ones", [hidden])
        zeros(f"{scope}/beta", [hidden])

    weight("bert/embeddings/word_embeddings", [config.vocab_size, hidden])
    weight("bert/embeddings/token_type_embeddings", [config.type_vocab_size, hidden])
    weight("bert/embeddings/position_embeddings", [config.max_position_embeddings, hidden])
    norm("bert/embeddings/LayerNorm")
    for layer_index in range(config.num_hidden_layers):
        scope = f"bert/encoder/layer_{layer_index}"
        for part in ("query", "key", "value"):
            dense(f"{scope}/attention/self/{part}", hidden, hidden)
        dense(f"{scope}/attention/output/dense", hidden, hidden)
        norm(f"{scope}/attention/output/LayerNorm")
        dense(f"{scope}/intermediate/dense", hidden, config.intermediate_size)
        dense(f"{scope}/output/dense", config.intermediate_size, hidden)
        norm(f"{scope}/output/LayerNorm")
    dense("bert/pooler/dense", hidden, hidden)
    dense("cls/predictions/transform/dense", hidden, hidden)
    norm("cls/predictions/transform/LayerNorm")
    zeros("cls/predictions/output_bias", [config.vocab_size])
    if use_next_sentence_prediction:
        weight("cls/seq_relationship/output_weights", [2, hidden])
        zeros("cls/seq_relationship/output_bias", [2])
    return shapes


def parameter_count(config, use_next_sentence_prediction, *, untrained_pooler=True):
    """The model's parameters: the sizes of its variables in ``variable_shapes``.

    Without next-sentence prediction the model still has a pooler (the
    checkpoints and tf/ hold it) that nothing trains; ``untrained_pooler=False``
    leaves it out, as the Transformers export does.
    """
    shapes = variable_shapes(config, use_next_sentence_prediction)
    return sum(
        math.prod(shape)
        for name, (_, shape) in shapes.items()
        if untrained_pooler or use_next_sentence_prediction or head_of(name) != "next-sentence head"
    )


def hf_architecture(use_next_sentence_prediction):
    """The Transformers class of the model: with its next-sentence head or without."""
    return "BertForPreTraining" if use_next_sentence_prediction else "BertForMaskedLM"


def head_of(name):
    """The pretraining head a variable belongs to, or None for the encoder."""
    for head, prefixes in HEADS.items():
        if name.startswith(prefixes):
            return head
    return None


# Tensors whose Google name does not follow the generic rules below.
_SPECIAL_NAMES = {
    "cls/predictions/output_bias": ("cls.predictions.bias", False),
    "cls/seq_relationship/output_weights": ("cls.seq_relationship.weight", False),  # already [2, hidden]
    "cls/seq_relationship/output_bias": ("cls.seq_relationship.bias", False),
}
_EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings")


def hf_name(google_name: str) -> tuple[str, bool]:
    """Transformers' state-dict name of a Google checkpoint variable, and whether to transpose it.

    ``bert/encoder/layer_3/attention/self/query/kernel`` ->
    (``bert.encoder.layer.3.attention.self.query.weight``, True): a TF dense
    kernel is ``[in, out]``, a PyTorch Linear weight ``[out, in]``.
    """
    if google_name in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[google_name]
    parts = google_name.split("/")
    transpose = False
    leaf = parts[-1]
    if leaf == "kernel":
        parts[-1], transpose = "weight", True
    elif leaf == "gamma":
        parts[-1] = "weight"
    elif leaf == "beta":
        parts[-1] = "bias"
    elif leaf in _EMBEDDINGS:
        parts.append("weight")
    elif leaf != "bias":
        raise ValueError(f"no Transformers name for checkpoint variable {google_name}")
    mapped = []
    for part in parts:
        match = re.fullmatch(r"layer_(\d+)", part)
        mapped.extend(["layer", match.group(1)] if match else [part])
    return ".".join(mapped), transpose
