"""A released BERT to continue pretraining from (the config key ``init_from``).

Two layouts are read:

* Google's release layout, which the export's ``tf/`` also writes:
  ``bert_config.json`` (Google's activation names), ``bert_model.ckpt.*``
  (any one checkpoint prefix), ``vocab.txt``;
* a Transformers BERT directory, which the export's ``hf/`` writes and
  people download: ``config.json`` (model_type bert), ``model.safetensors``
  or ``pytorch_model.bin``, ``vocab.txt`` or ``tokenizer.json``.

``inspect_source`` reads what the plan needs (architecture, vocabulary,
casing) without touching the weights; ``check_weights`` compares the
weights' names and shapes with the model the run will build, and
``read_weights`` gives them under Google's names for the first segment.
Nothing here imports TensorFlow unless the source is a TF checkpoint and
its weights are asked for.
"""

from __future__ import annotations

import glob
import json
import os
import struct
from dataclasses import dataclass

import numpy as np

from .bert_config import (
    ACTIVATION_FUNCTIONS,
    ACTIVATIONS_FROM_HF,
    ARCHITECTURE_KEYS,
    LAYER_NORM_EPSILON,
    BertConfig,
    activation_from,
    head_of,
    hf_name,
    variable_shapes,
)
from .errors import ConfigError, VocabularyError
from .files import read_json_object

GOOGLE = "Google's release layout"
TRANSFORMERS = "a Transformers BERT directory"
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Keys of Transformers' config.json that are BertConfig fields under the same name.
_HF_CONFIG_KEYS = ("vocab_size", *ARCHITECTURE_KEYS, "hidden_dropout_prob", "attention_probs_dropout_prob")


@dataclass(frozen=True)
class SourceModel:
    directory: str
    layout: str  # GOOGLE or TRANSFORMERS
    config: BertConfig  # activation in this project's names
    hidden_act_as_written: str
    tokens: tuple[str, ...]
    do_lower_case: bool
    casing_from: str  # where the casing was read
    config_file: str
    vocabulary_file: str
    weights: str  # a checkpoint prefix (GOOGLE) or a weights file (TRANSFORMERS)

    @property
    def weight_files(self) -> list[str]:
        if self.layout == GOOGLE:
            return sorted(glob.glob(glob.escape(self.weights) + ".*"))
        return [self.weights]

    @property
    def files(self) -> list[str]:
        """Every file the run reads from the source (the first segment's inputs)."""
        return [self.config_file, self.vocabulary_file, *self.weight_files]

    def describe(self) -> str:
        c = self.config
        casing = "uncased" if self.do_lower_case else "cased"
        return (
            f"{self.directory} ({self.layout}): {c.num_hidden_layers} layers, hidden {c.hidden_size}, "
            f"{c.num_attention_heads} heads, intermediate {c.intermediate_size}, "
            f"{c.max_position_embeddings} positions, hidden_act {self.hidden_act_as_written!r} "
            f"({ACTIVATION_FUNCTIONS[c.hidden_act]}), vocabulary of {len(self.tokens):,} {casing} tokens "
            f"({self.casing_from})"
        )


def inspect_source(directory: str, key: str = "init_from") -> SourceModel:
    """The source's layout, architecture, vocabulary and casing; a ConfigError names what is wrong."""
    if not os.path.isdir(directory):
        raise ConfigError(f"{key} is {directory!r}, which is not a directory; expected a BERT model directory")
    has = lambda name: os.path.isfile(os.path.join(directory, name))  # noqa: E731
    if has("bert_config.json") and glob.glob(os.path.join(glob.escape(directory), "*.index")):
        source = _inspect_google(directory, key)
    elif has("config.json") and any(has(name) for name in HF_WEIGHT_FILES):
        source = _inspect_transformers(directory, key)
    else:
        found = ", ".join(sorted(os.listdir(directory))[:12]) or "nothing"
        raise ConfigError(
            f"{key} {directory} is neither layout: expected Google's (bert_config.json, bert_model.ckpt.index "
            "and .data-*, vocab.txt) or Transformers' (config.json, model.safetensors or pytorch_model.bin, "
            f"vocab.txt or tokenizer.json); found {found}"
        )
    if len(source.tokens) != source.config.vocab_size:
        raise ConfigError(
            f"{key} {directory}: {source.vocabulary_file} has {len(source.tokens):,} tokens but "
            f"{source.config_file} says vocab_size {source.config.vocab_size:,}; expected the vocabulary of the "
            "model's embeddings"
        )
    return source


def _inspect_google(directory: str, key: str) -> SourceModel:
    config_file = os.path.join(directory, "bert_config.json")
    written = _json_object(config_file, key)
    config = _config_or_error(lambda: BertConfig.from_dict(written, google_names=True), key, config_file)
    indexes = sorted(glob.glob(os.path.join(glob.escape(directory), "*.index")))
    preferred = os.path.join(directory, "bert_model.ckpt.index")
    if preferred in indexes:
        index = preferred
    elif len(indexes) == 1:
        index = indexes[0]
    else:
        raise ConfigError(
            f"{key} {directory} holds {len(indexes)} checkpoints ({', '.join(map(os.path.basename, indexes))}); "
            "expected one (bert_model.ckpt)"
        )
    prefix = index[: -len(".index")]
    if not glob.glob(glob.escape(prefix) + ".data-*"):
        raise ConfigError(f"{key}: {index} has no data file {os.path.basename(prefix)}.data-*; the checkpoint is incomplete")
    vocabulary_file = os.path.join(directory, "vocab.txt")
    tokens = _read_vocab_txt(vocabulary_file, key)
    do_lower_case, casing_from = _casing_from_tokens(tokens)
    return SourceModel(
        directory=directory, layout=GOOGLE, config=config, hidden_act_as_written=written.get("hidden_act", "gelu"),
        tokens=tuple(tokens), do_lower_case=do_lower_case, casing_from=casing_from, config_file=config_file,
        vocabulary_file=vocabulary_file, weights=prefix,
    )


def _inspect_transformers(directory: str, key: str) -> SourceModel:
    config_file = os.path.join(directory, "config.json")
    written = _json_object(config_file, key)
    if written.get("model_type", "bert") != "bert":
        raise ConfigError(f"{key}: {config_file} has model_type {written['model_type']!r}; expected 'bert'")
    if written.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError(
            f"{key}: {config_file} has position_embedding_type {written['position_embedding_type']!r}; "
            "expected 'absolute' (BERT's learned positions)"
        )
    if written.get("layer_norm_eps", LAYER_NORM_EPSILON) != LAYER_NORM_EPSILON:
        raise ConfigError(
            f"{key}: {config_file} has layer_norm_eps {written['layer_norm_eps']}; expected {LAYER_NORM_EPSILON} "
            "(BERT's, which this project's model computes)"
        )
    values = {name: written[name] for name in _HF_CONFIG_KEYS if name in written}
    if "hidden_act" in values:
        values["hidden_act"] = activation_from(values["hidden_act"], ACTIVATIONS_FROM_HF, "Transformers", config_file)
    config = _config_or_error(lambda: BertConfig.from_dict(values), key, config_file)
    weights = next(os.path.join(directory, name) for name in HF_WEIGHT_FILES if os.path.isfile(os.path.join(directory, name)))
    vocab_txt = os.path.join(directory, "vocab.txt")
    if os.path.isfile(vocab_txt):
        vocabulary_file, tokens = vocab_txt, _read_vocab_txt(vocab_txt, key)
    elif os.path.isfile(os.path.join(directory, "tokenizer.json")):
        vocabulary_file = os.path.join(directory, "tokenizer.json")
        tokens = _tokens_from_tokenizer_json(vocabulary_file, key)
    else:
        raise ConfigError(f"{key} {directory} has neither vocab.txt nor tokenizer.json; expected the model's vocabulary")
    do_lower_case, casing_from = _casing_from_transformers(directory, key)
    if do_lower_case is None:
        do_lower_case, casing_from = _casing_from_tokens(tokens)
    return SourceModel(
        directory=directory, layout=TRANSFORMERS, config=config, hidden_act_as_written=written.get("hidden_act", "gelu"),
        tokens=tuple(tokens), do_lower_case=do_lower_case, casing_from=casing_from, config_file=config_file,
        vocabulary_file=vocabulary_file, weights=weights,
    )


def _config_or_error(build, key, path):
    try:
        return build()
    except ConfigError as error:
        raise ConfigError(f"{key}: {path}: {error}") from None


def _json_object(path: str, key: str) -> dict:
    """A JSON file of the source model; ConfigError naming the file and the setting otherwise."""
    return read_json_object(path, f"JSON file of {key}", ConfigError)


def _read_vocab_txt(path: str, key: str) -> list[str]:
    from .tokenization import read_vocabulary

    try:
        return read_vocabulary(path)
    except VocabularyError as error:
        raise ConfigError(f"{key}: {error}") from None


def _tokens_from_tokenizer_json(path: str, key: str) -> list[str]:
    from .tokenization import check_special_tokens

    model = _json_object(path, key).get("model") or {}
    vocab = model.get("vocab")
    if model.get("type") != "WordPiece" or not isinstance(vocab, dict):
        raise ConfigError(f"{key}: {path} is not a WordPiece tokenizer; expected BERT's (or a vocab.txt beside it)")
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    if [index for _, index in by_id] != list(range(len(by_id))):
        raise ConfigError(f"{key}: {path}: the vocabulary's ids are not 0..{len(by_id) - 1}; expected one id per token")
    try:
        check_special_tokens(path, vocab)
    except VocabularyError as error:
        raise ConfigError(f"{key}: {error}") from None
    return [token for token, _ in by_id]


def _casing_from_transformers(directory: str, key: str) -> tuple[bool | None, str]:
    tokenizer_config = os.path.join(directory, "tokenizer_config.json")
    if os.path.isfile(tokenizer_config):
        value = _json_object(tokenizer_config, key).get("do_lower_case")
        if isinstance(value, bool):
            return value, "do_lower_case in tokenizer_config.json"
    tokenizer_json = os.path.join(directory, "tokenizer.json")
    if os.path.isfile(tokenizer_json):
        normalizer = _json_object(tokenizer_json, key).get("normalizer") or {}
        if isinstance(normalizer.get("lowercase"), bool):
            return normalizer["lowercase"], "the normalizer of tokenizer.json"
    return None, ""


def _casing_from_tokens(tokens: list[str]) -> tuple[bool, str]:
    """Google's layout does not record the casing: a vocabulary without upper-case letters is uncased."""
    from .tokenization import case_mismatch_warning

    uncased = case_mismatch_warning(tokens, do_lower_case=False) is not None
    return uncased, "no casing recorded; read from the vocabulary's letters"


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------


def _google_names(config: BertConfig) -> dict[str, tuple[str, bool]]:
    """Transformers' state-dict key -> (Google name, transpose) for every variable a BERT may have."""
    return {hf_name(name)[0]: (name, hf_name(name)[1]) for name in variable_shapes(config, True)}


def _hf_key(key: str) -> str:
    """A state-dict key as BertForPreTraining names it (bare BertModel keys, LayerNorm gamma/beta)."""
    if not key.startswith(("bert.", "cls.")):
        key = "bert." + key
    if key.endswith(".gamma"):
        key = key[: -len(".gamma")] + ".weight"
    elif key.endswith(".beta"):
        key = key[: -len(".beta")] + ".bias"
    return "cls.predictions.bias" if key == "cls.predictions.decoder.bias" else key


def _safetensors_shapes(path: str) -> dict[str, tuple[int, ...]]:
    """The tensors' shapes from the file's JSON header, without reading the weights."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    return {key: tuple(value["shape"]) for key, value in header.items() if key != "__metadata__"}


def _torch_state(path: str) -> dict:
    try:
        import torch
    except ImportError:
        raise ConfigError(f"init_from: reading {path} needs PyTorch; pip install torch, or use model.safetensors") from None
    return torch.load(path, map_location="cpu", weights_only=True)


def _source_tensors(source: SourceModel, read: bool) -> dict[str, object]:
    """Google name -> shape (read=False) or float32 array (read=True), for every variable the source has."""
    if source.layout == GOOGLE:
        import tensorflow as tf

        try:
            reader = tf.train.load_checkpoint(source.weights)
        except Exception as error:  # TensorFlow raises several kinds for bad bundles
            raise ConfigError(f"init_from: checkpoint {source.weights} cannot be read: {error}") from None
        shapes = reader.get_variable_to_shape_map()
        known = variable_shapes(source.config, True)
        return {
            name: (reader.get_tensor(name).astype(np.float32) if read else tuple(shapes[name]))
            for name in shapes
            if name in known
        }
    names = _google_names(source.config)
    if source.weights.endswith(".safetensors"):
        if read:
            from safetensors.numpy import load_file

            raw = load_file(source.weights)
        else:
            raw = _safetensors_shapes(source.weights)
    else:
        state = _torch_state(source.weights)
        raw = {key: (value.float().numpy() if read else tuple(value.shape)) for key, value in state.items()}
    tensors = {}
    for key, value in raw.items():
        key = _hf_key(key)
        if key in names:
            name, transpose = names[key]
            if read:
                value = np.asarray(value, dtype=np.float32)
                value = np.ascontiguousarray(value.T if transpose else value)
            else:
                value = tuple(reversed(value)) if transpose else tuple(value)
            tensors.setdefault(name, value)
    return tensors


def check_weights(source: SourceModel, use_next_sentence_prediction: bool, key: str = "init_from") -> list[str]:
    """Compare the source's weights with the model the run builds; return the heads it must initialise.

    Every encoder variable must be there with the shape its config implies.
    A head variable of another shape (a head for another vocabulary) is
    refused; a missing head is initialised fresh, except the next-sentence
    head when the run trains next-sentence prediction.
    """
    found = _source_tensors(source, read=False)
    where = source.weights
    fresh = []
    for name, (_, shape) in variable_shapes(source.config, use_next_sentence_prediction).items():
        head = head_of(name)
        if name not in found:
            if head is None:
                raise ConfigError(
                    f"{key}: {where} has no variable {name}, which {source.config_file} implies; "
                    "expected the weights of the model that config describes"
                )
            if name.startswith("cls/seq_relationship/"):
                raise ConfigError(
                    f"{key}: {where} has no next-sentence head ({name}) while model.use_next_sentence_prediction is "
                    "true; set model.use_next_sentence_prediction: false to continue without it"
                )
            if head not in fresh:
                fresh.append(head)
        elif tuple(found[name]) != tuple(shape):
            raise ConfigError(
                f"{key}: {name} in {where} has shape {list(found[name])} but {source.config_file} implies {shape} "
                f"(vocab_size {source.config.vocab_size}, hidden_size {source.config.hidden_size}); "
                "expected weights that match their own config"
            )
    return fresh


def read_weights(source: SourceModel, use_next_sentence_prediction: bool) -> dict[str, np.ndarray]:
    """The source's weights the run's model has, under Google's names, float32 (check_weights first)."""
    wanted = variable_shapes(source.config, use_next_sentence_prediction)
    return {name: value for name, value in _source_tensors(source, read=True).items() if name in wanted}
