"""Checks and derived values of the workflow configuration (config.yaml).

The JSON schema (workflow/schemas/config.schema.yaml) checks each key on its
own; this module checks what the schema cannot: keys that must agree with each
other, files that must exist, and the training plan. It runs when the
Snakefile is parsed, so `snakemake -n` rejects a bad config before any job is
submitted, with a message that names the key.
"""

from __future__ import annotations

import os
import shutil

from .corpus import expand_patterns
from .errors import ConfigError, CorpusError
from .plan import Segment, plan_run

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def phase_name(max_seq_length: int) -> str:
    """Phases are named by their sequence length: phase128, phase512."""
    return f"phase{max_seq_length}"


def resolved_phases(config: dict) -> list[dict]:
    """The phases with names and schedule defaults filled in.

    ``num_train_steps`` defaults to the phase's last step and
    ``num_warmup_steps`` to 1% of it (the mission's "1% warmup"). With
    ``learning_rate_schedule: continuous`` every phase shares one schedule
    over the whole run, so a phase's own values are replaced.
    """
    phases = [dict(phase) for phase in config["phases"]]
    run_last_step = phases[-1]["last_step"]
    continuous = config["training"].get("learning_rate_schedule", "per_phase") == "continuous"
    first_warmup = phases[0].get("num_warmup_steps")
    for phase in phases:
        phase["name"] = phase_name(phase["max_seq_length"])
        if continuous:
            phase["num_train_steps"] = run_last_step
            phase["num_warmup_steps"] = first_warmup if first_warmup is not None else run_last_step // 100
        else:
            phase.setdefault("num_train_steps", phase["last_step"])
            phase.setdefault("num_warmup_steps", phase["num_train_steps"] // 100)
    return phases


def training_plan(config: dict) -> list[Segment]:
    """Every training segment of the run, in order (the pure plan of plan.py)."""
    return plan_run(resolved_phases(config))


def corpus_files(config: dict) -> list[str]:
    """The corpus files matched by ``corpus.files``, sorted; each glob must match."""
    try:
        return expand_patterns(config["corpus"]["files"], flag="corpus.files")
    except CorpusError as error:
        raise ConfigError(str(error)) from None


def check_config(config: dict) -> None:
    """Raise ConfigError for the first inconsistency found, naming the key."""
    model = config["model"]
    if model["hidden_size"] % model["num_attention_heads"]:
        raise ConfigError(
            f"model.hidden_size is {model['hidden_size']}, which num_attention_heads "
            f"{model['num_attention_heads']} does not divide; expected a multiple of it"
        )
    phases = resolved_phases(config)
    names = [phase["name"] for phase in phases]
    for index, phase in enumerate(phases):
        key = f"phases[{index}]"
        if names.count(phase["name"]) > 1:
            raise ConfigError(
                f"{key}.max_seq_length is {phase['max_seq_length']} for two phases; "
                "expected a different sequence length per phase (each phase has its own records)"
            )
        if phase["max_seq_length"] > model["max_position_embeddings"]:
            raise ConfigError(
                f"{key}.max_seq_length is {phase['max_seq_length']}; expected at most "
                f"model.max_position_embeddings ({model['max_position_embeddings']})"
            )
        if phase["max_predictions_per_seq"] > phase["max_seq_length"] - 3:
            raise ConfigError(
                f"{key}.max_predictions_per_seq is {phase['max_predictions_per_seq']}; expected at most "
                f"max_seq_length - 3 = {phase['max_seq_length'] - 3} ([CLS] and two [SEP] are never masked)"
            )
        if phase["num_warmup_steps"] > phase["num_train_steps"]:
            raise ConfigError(
                f"{key}.num_warmup_steps is {phase['num_warmup_steps']}; expected at most "
                f"num_train_steps ({phase['num_train_steps']})"
            )
        if phase["last_step"] <= phase["first_step"]:
            raise ConfigError(
                f"{key}.last_step is {phase['last_step']}; expected a step after first_step {phase['first_step']}"
            )
    plan_run(phases)
    if phases[0]["first_step"] != 0:
        raise ConfigError(
            f"phases[0].first_step is {phases[0]['first_step']}; expected 0 (training starts from scratch)"
        )
    umask = int(str(config.get("umask", "0007")), 8)
    if not umask & 0o002:
        raise ConfigError(
            f"umask is {config['umask']}, which leaves outputs world-writable; "
            "expected a mask that includes 002 (for example 0007 or 0027)"
        )
    vocab_file = config["vocabulary"].get("file")
    if vocab_file:
        check_vocabulary_file(vocab_file, "vocabulary.file")
    corpus_files(config)
    training_python(config)


def training_python(config: dict, basedir: str = ".") -> str | None:
    """The interpreter of ``training.python`` as a usable path (None: Snakemake's own).

    A value with a slash is a path (relative ones to ``basedir``); a bare
    name is looked up on PATH, as the job's shell would.
    """
    value = config["training"].get("python")
    if not value:
        return None
    if os.sep in value:
        path = value if os.path.isabs(value) else os.path.join(basedir, value)
        found = path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    else:
        found = shutil.which(value)
    if found is None:
        raise ConfigError(
            f"training.python is {value!r}, which is not an executable file or a command on PATH; "
            "expected the Python interpreter that has TensorFlow (and Horovod), "
            "for example .venv-tf215/bin/python, or null for Snakemake's own"
        )
    return value


def check_vocabulary_file(path: str, key: str) -> None:
    """A given vocabulary must exist and hold BERT's special tokens."""
    if not os.path.isfile(path):
        raise ConfigError(f"{key}: {path} does not exist; expected a vocab.txt with one token per line")
    with open(path, encoding="utf-8") as handle:
        tokens = {line.rstrip("\n") for line in handle}
    missing = [token for token in SPECIAL_TOKENS if token not in tokens]
    if missing:
        raise ConfigError(
            f"{key}: {path} lacks {' '.join(missing)}; expected all of {' '.join(SPECIAL_TOKENS)}"
        )


def bert_config_dict(config: dict, vocab_size: int) -> dict:
    """Google's bert_config.json content for this run."""
    model = dict(config["model"])
    model.pop("use_next_sentence_prediction", None)
    return {"vocab_size": vocab_size, **model}
