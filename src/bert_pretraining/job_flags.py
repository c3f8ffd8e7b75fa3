"""The settings the training and evaluation programs take as flags: one table.

Each flag keeps Google's name where Google's run_pretraining.py has one and
names the setting it carries. The workflow fills the flags from the run's
``Settings``; the programs' argparse takes each flag's type, default,
choices and help from the config schema. So a program called by hand and the
workflow agree, and no default is written twice.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass

from .cli import add_bool_flag
from .settings import PhaseSettings, Settings, setting_schema


@dataclass(frozen=True)
class SettingFlag:
    name: str
    # Where the value comes from: "phase.<key>" (the resolved phase) or "<section>.<key>".
    source: str
    # The schema entry that declares it, when not the source's own.
    declared_as: str | None = None

    def schema(self) -> dict:
        section, key = (self.declared_as or self.source).split(".")
        return setting_schema("phases" if section == "phase" else section, key)

    def value(self, settings: Settings, phase: PhaseSettings):
        section, key = self.source.split(".")
        return getattr(phase if section == "phase" else getattr(settings, section), key)


TRAINING_FLAGS = (
    SettingFlag("max_seq_length", "phase.max_seq_length"),
    SettingFlag("max_predictions_per_seq", "phase.max_predictions_per_seq"),
    SettingFlag("train_batch_size", "phase.batch_size_per_gpu"),
    SettingFlag("num_train_steps", "phase.num_train_steps"),
    SettingFlag("num_warmup_steps", "phase.num_warmup_steps"),
    SettingFlag(
        "gradient_accumulation_steps", "phase.gradient_accumulation_steps", "training.gradient_accumulation_steps"
    ),
    SettingFlag("learning_rate", "training.learning_rate"),
    SettingFlag("scale_learning_rate_by_ranks", "training.scale_learning_rate_by_ranks"),
    SettingFlag("precision", "training.precision"),
    SettingFlag("use_xla", "training.use_xla"),
    SettingFlag("save_checkpoints_steps", "training.save_checkpoints_steps"),
    SettingFlag("keep_checkpoints", "training.keep_checkpoints"),
    SettingFlag("log_every_steps", "training.log_every_steps"),
    SettingFlag("seed", "training.seed"),
    SettingFlag("use_next_sentence_prediction", "model.use_next_sentence_prediction"),
    SettingFlag("distribution", "training.distribution"),
    SettingFlag("fp16_allreduce", "training.fp16_allreduce"),
    SettingFlag("collective_timeout_seconds", "training.collective_timeout_seconds"),
    SettingFlag("hang_timeout_seconds", "training.hang_timeout_seconds"),
    SettingFlag("deterministic", "training.deterministic"),
)

EVALUATION_FLAGS = (
    SettingFlag("max_seq_length", "phase.max_seq_length"),
    SettingFlag("max_predictions_per_seq", "phase.max_predictions_per_seq"),
    SettingFlag("batch_size", "training.eval_batch_size"),
    SettingFlag("use_next_sentence_prediction", "model.use_next_sentence_prediction"),
)

_TYPES = {"integer": int, "number": float, "string": str}


def add_setting_flags(parser: argparse.ArgumentParser, flags, *, optional=()) -> None:
    """One argparse flag per entry; a setting without a schema default is required unless in ``optional``."""
    for flag in flags:
        schema = flag.schema()
        help_text = " ".join(schema.get("description", "").split()).replace("%", "%%")
        default = schema.get("default")
        if schema.get("type") == "boolean":
            add_bool_flag(parser, flag.name, default, help_text)
            continue
        parser.add_argument(
            f"--{flag.name}",
            type=_TYPES[schema["type"]],
            choices=schema.get("enum"),
            default=default,
            required=default is None and flag.name not in optional,
            help=help_text,
        )


def flag_values(flags, settings: Settings, phase: PhaseSettings) -> dict:
    return {flag.name: flag.value(settings, phase) for flag in flags}


def format_flags(values: dict) -> str:
    """``--name=value`` words for a shell command line, quoted; booleans as true/false."""
    words = []
    for name, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        words.append(f"--{name}={shlex.quote(text)}")
    return " ".join(words)
