"""The final export: a training checkpoint as models people can load the next day.

``export_model`` turns a training checkpoint (model weights, Adam slots,
global_step, loss scale, input position...) into one directory::

    <output>/
      README.md                    model card: what was trained, evaluation, how to load
      tf/bert_model.ckpt.index     Google's release layout: ONLY the model
      tf/bert_model.ckpt.data-00000-of-00001   variables under Google's names
      tf/bert_config.json
      tf/vocab.txt
      hf/config.json               a Transformers BertForPreTraining (or, without
      hf/model.safetensors         NSP, BertForMaskedLM) directory
      hf/vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json
      hf/README.md                 the same model card, so hf/ can be uploaded alone

``tf/`` loads in Google's ``modeling.py`` (``init_checkpoint``) and in
Transformers' TF-checkpoint converters, which break on optimizer slots
(huggingface/transformers#393). ``hf/`` is written without Transformers or
PyTorch: ``model.safetensors`` is written with the ``safetensors`` numpy API,
kernels transposed to PyTorch's ``[out, in]`` layout, and holds exactly the
tensors ``save_pretrained`` writes: the state dict without the tied
``cls.predictions.decoder.weight`` (= word embeddings) and
``cls.predictions.decoder.bias`` (= ``cls.predictions.bias``).

A model trained without next-sentence prediction has no NSP head and an
untrained pooler (nothing in its loss reaches the pooler), so ``hf/`` is a
``BertForMaskedLM`` without pooler weights: ``AutoModelForMaskedLM`` loads it
with no missing key, and a fine-tuning model that uses the pooler reports it
as newly initialised, which it effectively is. ``tf/`` keeps every model
variable, the pooler included, as Google's layout has it.

The export is written into a temporary sibling directory and renamed into
place at the end, so a failed or killed export leaves no half-written result.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket

import numpy as np

from . import checkpoints
from .bert_config import HF_ACTIVATIONS, LAYER_NORM_EPSILON, BertConfig, head_of, hf_architecture, hf_name
from .errors import CheckpointError, WorkflowError
from .files import file_sha256, read_json_object, write_json
from .model_card import model_card
from .run_inputs import bert_config_digest, check_checkpoint_inputs
from .tokenization import (
    SPECIAL_TOKEN_ROLES,
    SPECIAL_TOKENS,
    case_mismatch_warning,
    read_vocabulary,
    tokenizer_from_vocab,
    write_vocabulary,
)

log = logging.getLogger(__name__)

TF_CHECKPOINT_NAME = "bert_model.ckpt"
NSP_WEIGHTS = "cls/seq_relationship/output_weights"


def hf_state_dict(tensors: dict[str, np.ndarray], use_next_sentence_prediction: bool) -> dict[str, np.ndarray]:
    """The safetensors content for hf/, from Google-named float32 arrays.

    With NSP: BertForPreTraining's state dict minus the tied decoder weight
    and bias. Without: BertForMaskedLM's (no pooler, no seq_relationship).
    """
    state = {}
    for name, value in tensors.items():
        if not use_next_sentence_prediction and head_of(name) == "next-sentence head":
            continue
        key, transpose = hf_name(name)
        state[key] = np.ascontiguousarray(value.T if transpose else value, dtype=np.float32)
    return state


def hf_config(config: BertConfig, use_next_sentence_prediction: bool, pad_token_id: int) -> dict:
    """Transformers' config.json for the model (model_type bert)."""
    return {
        "architectures": [hf_architecture(use_next_sentence_prediction)],
        "model_type": "bert",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": HF_ACTIVATIONS[config.hidden_act],
        "hidden_dropout_prob": config.hidden_dropout_prob,
        "attention_probs_dropout_prob": config.attention_probs_dropout_prob,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": LAYER_NORM_EPSILON,
        "pad_token_id": pad_token_id,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
        "dtype": "float32",
    }


# --------------------------------------------------------------------------
# Reading the checkpoint
# --------------------------------------------------------------------------


def checkpoint_variable_names(prefix: str) -> list[str]:
    """The tensor names of a checkpoint, after checking that its files exist."""
    import tensorflow as tf

    index = prefix + checkpoints.INDEX_SUFFIX
    if not os.path.isfile(index):
        raise CheckpointError(
            f"checkpoint {prefix} does not exist ({index} not found); expected a checkpoint prefix such as "
            "results/<run>/phase512/model.ckpt-<step>, or its .index file"
        )
    # The files' integrity (manifest sizes and SHA-256) is checked when the
    # weights are read; the index alone is enough to list the names.
    try:
        return [name for name, _ in tf.train.list_variables(prefix)]
    except Exception as error:  # TensorFlow raises several kinds for bad bundles
        raise CheckpointError(f"checkpoint {prefix} cannot be read by TensorFlow: {error}") from None


def read_model_weights(prefix: str, config: BertConfig, use_next_sentence_prediction: bool) -> dict[str, np.ndarray]:
    """The model variables of a checkpoint (Google names, float32, in model order); nothing else.

    A missing variable or a shape that does not fit ``config`` is a
    CheckpointError naming the tensor; a weight that is NaN or infinite (a
    diverged run) is refused too.
    """
    from .evaluation import load_model

    model = load_model(prefix, config, use_next_sentence_prediction)
    tensors = {name: variable.numpy().astype(np.float32, copy=False) for name, variable in model.variables_by_name.items()}
    del model
    for name, value in tensors.items():
        if not np.all(np.isfinite(value)):
            raise CheckpointError(
                f"checkpoint {prefix}: {name} holds NaN or infinite values; the run diverged at or before this "
                "checkpoint, export an earlier one"
            )
    return tensors


# --------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------


def write_tf_release(directory: str, tensors: dict[str, np.ndarray], config: BertConfig, tokens: list[str]) -> None:
    """Google's release layout: bert_model.ckpt (model variables only), bert_config.json, vocab.txt."""
    import tensorflow as tf

    os.makedirs(directory)
    names = list(tensors)
    with tf.device("/CPU:0"):
        tf.raw_ops.SaveV2(
            prefix=os.path.join(directory, TF_CHECKPOINT_NAME),
            tensor_names=names,
            shape_and_slices=[""] * len(names),
            tensors=[tf.convert_to_tensor(tensors[name]) for name in names],
        )
    config.to_json_file(os.path.join(directory, "bert_config.json"), google_names=True)
    write_vocabulary(os.path.join(directory, "vocab.txt"), tokens)
    written = sorted(name for name, _ in tf.train.list_variables(os.path.join(directory, TF_CHECKPOINT_NAME)))
    if written != sorted(names):
        raise WorkflowError(f"{directory}/{TF_CHECKPOINT_NAME} does not hold exactly the model variables")


def hf_tokenizer_json(tokens: list[str], do_lower_case: bool) -> str:
    """tokenizer.json: the records' WordPiece tokenizer plus BERT's special-token handling."""
    from tokenizers import AddedToken, decoders, processors

    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = tokenizer_from_vocab(vocab, do_lower_case)
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    cls, sep = SPECIAL_TOKEN_ROLES["cls_token"], SPECIAL_TOKEN_ROLES["sep_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    return tokenizer.to_str(pretty=True)


def write_hf_model(
    directory: str,
    tensors: dict[str, np.ndarray],
    config: BertConfig,
    tokens: list[str],
    *,
    do_lower_case: bool,
    use_next_sentence_prediction: bool,
) -> list[str]:
    """A Transformers model directory; returns the safetensors keys written."""
    try:
        from safetensors.numpy import save_file
    except ImportError as error:
        raise WorkflowError(
            "the export needs the 'safetensors' package to write hf/model.safetensors; pip install safetensors"
        ) from error

    os.makedirs(directory)
    pad_token_id = tokens.index(SPECIAL_TOKEN_ROLES["pad_token"])
    write_json(os.path.join(directory, "config.json"), hf_config(config, use_next_sentence_prediction, pad_token_id))
    state = hf_state_dict(tensors, use_next_sentence_prediction)
    # "format": "pt" is what Transformers checks to load the file as PyTorch weights.
    save_file(state, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})

    write_vocabulary(os.path.join(directory, "vocab.txt"), tokens)
    with open(os.path.join(directory, "tokenizer.json"), "w", encoding="utf-8") as handle:
        handle.write(hf_tokenizer_json(tokens, do_lower_case) + "\n")
    write_json(
        os.path.join(directory, "tokenizer_config.json"),
        {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": do_lower_case,
            # null: accents are stripped exactly when lower-casing, as in
            # Google's BasicTokenizer and the records of this run.
            "strip_accents": None,
            "tokenize_chinese_chars": True,
            "model_max_length": config.max_position_embeddings,
            "clean_up_tokenization_spaces": True,
            **SPECIAL_TOKEN_ROLES,
        },
    )
    write_json(os.path.join(directory, "special_tokens_map.json"), SPECIAL_TOKEN_ROLES)
    return sorted(state)


# --------------------------------------------------------------------------
# The export
# --------------------------------------------------------------------------


def _check_output(output_dir: str) -> None:
    if os.path.lexists(output_dir):
        if not os.path.isdir(output_dir):
            raise WorkflowError(f"{output_dir}: the export output exists and is not a directory; remove it first")
        if os.listdir(output_dir):
            raise WorkflowError(
                f"{output_dir}: the export output directory exists and is not empty; remove it or choose another "
                "--output (an export is never written over another)"
            )


def _staging_prefix(base: str) -> str:
    """Staging directories are named .<output>.tmp-<host>-<pid>, beside the output."""
    return f".{base}.tmp-{socket.gethostname()}-"


def _remove_stale_staging(parent: str, base: str) -> None:
    """Staging directories of killed exports on this host (their process is gone).

    Only this host's: on a shared file system another node's pid means nothing here.
    """
    pattern = re.compile(re.escape(_staging_prefix(base)) + r"(\d+)$")
    for name in os.listdir(parent):
        match = pattern.match(name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
            continue  # still running (another export, or a reused pid): leave it
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _resolve_casing(do_lower_case: bool | None, sidecars: list[tuple[str, dict]]) -> bool:
    """The tokenizer's casing: as given, checked against the records it must reproduce."""
    recorded = {path: sidecar["do_lower_case"] for path, sidecar in sidecars if isinstance(sidecar.get("do_lower_case"), bool)}
    if len(set(recorded.values())) > 1:
        raise WorkflowError(
            "the records sidecars disagree on do_lower_case: "
            + ", ".join(f"{path}: {value}" for path, value in recorded.items())
        )
    if do_lower_case is None:
        if not recorded:
            raise WorkflowError(
                "the tokenizer's casing is unknown: pass --do_lower_case true|false (as the records were made), "
                "or --records_sidecar records.json"
            )
        return next(iter(recorded.values()))
    for path, value in recorded.items():
        if value != do_lower_case:
            raise WorkflowError(
                f"do_lower_case is {do_lower_case} but the records in {path} were made with do_lower_case {value}; "
                "the exported tokenizer must match the records the model was trained on"
            )
    return do_lower_case


def export_model(
    checkpoint: str,
    bert_config_file: str,
    vocab_file: str,
    output_dir: str,
    *,
    do_lower_case: bool | None = None,
    use_next_sentence_prediction: bool | None = None,
    eval_files: list[str] = (),
    records_sidecars: list[str] = (),
    phases: list[dict] = (),
    model_name: str | None = None,
    initialised_from: str | None = None,
) -> dict:
    """Export a checkpoint to ``output_dir`` (tf/, hf/, README.md); returns a summary.

    ``checkpoint`` is a prefix or one of its files. ``do_lower_case`` None
    means: as the records sidecars say (an error without sidecars: a wrong
    casing would give a tokenizer that silently mismatches the model).
    ``use_next_sentence_prediction`` None means: as the checkpoint has it (a
    ``cls/seq_relationship`` head or not).
    ``phases`` are the run's phases (name, max_seq_length, first_step,
    last_step...) for the model card; ``eval_files`` each phase's eval.json,
    ``records_sidecars`` the records.json files; ``initialised_from`` the
    model the run continued from (None: random initial weights).
    """
    output_dir = os.path.normpath(output_dir)
    prefix = checkpoints.recovered_prefix(checkpoint)  # a damaged final checkpoint is repaired from its copy
    _check_output(output_dir)
    config = BertConfig.from_json_file(bert_config_file)
    tokens = read_vocabulary(vocab_file)
    if len(tokens) != config.vocab_size:
        raise WorkflowError(
            f"{vocab_file} has {len(tokens):,} tokens but {bert_config_file} says vocab_size {config.vocab_size:,}; "
            "expected the vocabulary the model was trained with"
        )
    # The weights ship with this vocabulary and config only if they were trained with them.
    current = {"vocab_sha256": file_sha256(vocab_file), "bert_config_sha256": bert_config_digest(bert_config_file)}
    check_checkpoint_inputs(prefix, current, same_phase=False)
    evaluations = [(path, read_json_object(path, "evaluation result", WorkflowError)) for path in eval_files]
    sidecars = [(path, read_json_object(path, "records sidecar", WorkflowError)) for path in dict.fromkeys(records_sidecars)]
    do_lower_case = _resolve_casing(do_lower_case, sidecars)
    warning = case_mismatch_warning(tokens, do_lower_case)
    if warning:
        log.warning("%s: %s", vocab_file, warning)

    names = checkpoint_variable_names(prefix)
    has_nsp = NSP_WEIGHTS in names
    if use_next_sentence_prediction is None:
        use_next_sentence_prediction = has_nsp
    elif use_next_sentence_prediction and not has_nsp:
        raise CheckpointError(
            f"checkpoint {prefix} has no next-sentence head ({NSP_WEIGHTS}); it was trained without next-sentence "
            "prediction: export it with --use_next_sentence_prediction false"
        )
    elif not use_next_sentence_prediction and has_nsp:
        log.info("the checkpoint has a next-sentence head; exporting without it, as asked")
    tensors = read_model_weights(prefix, config, use_next_sentence_prediction)
    state = checkpoints.read_optional(prefix, ["global_step"])
    global_step = int(state["global_step"]) if "global_step" in state else None
    if global_step is None and re.search(r"model\.ckpt-\d+$", prefix):
        global_step = checkpoints.step_of(prefix)

    parent = os.path.dirname(os.path.abspath(output_dir))
    base = os.path.basename(os.path.abspath(output_dir))
    if model_name is None:
        # results/<run>/export -> "<run>"
        model_name = os.path.basename(parent) if base == "export" else base
    os.makedirs(parent, exist_ok=True)
    _remove_stale_staging(parent, base)
    staging = os.path.join(parent, f"{_staging_prefix(base)}{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        write_tf_release(os.path.join(staging, "tf"), tensors, config, tokens)
        hf_keys = write_hf_model(
            os.path.join(staging, "hf"),
            tensors,
            config,
            tokens,
            do_lower_case=do_lower_case,
            use_next_sentence_prediction=use_next_sentence_prediction,
        )
        card = model_card(
            model_name=model_name,
            config=config,
            tokens=tokens,
            do_lower_case=do_lower_case,
            use_next_sentence_prediction=use_next_sentence_prediction,
            checkpoint=prefix,
            global_step=global_step,
            phases=list(phases),
            evaluations=evaluations,
            sidecars=sidecars,
            hf_keys=hf_keys,
            initialised_from=initialised_from,
        )
        for place in (staging, os.path.join(staging, "hf")):
            with open(os.path.join(place, "README.md"), "w", encoding="utf-8") as handle:
                handle.write(card)
        _check_output(output_dir)
        try:
            # Renaming onto an empty directory replaces it; onto a non-empty one fails.
            os.rename(staging, output_dir)
        except OSError as error:
            raise WorkflowError(f"{output_dir}: could not move the finished export into place: {error}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary = {
        "output": output_dir,
        "checkpoint": prefix,
        "global_step": global_step,
        "use_next_sentence_prediction": use_next_sentence_prediction,
        "architecture": hf_architecture(use_next_sentence_prediction),
        "tf_variables": len(tensors),
        "hf_tensors": len(hf_keys),
    }
    log.info("exported %s to %s", prefix, output_dir)
    return summary
