"""A job's settings as flags: one convention for every program the workflow runs.

The settings a job takes are the schema's keys whose ``x-jobs`` name it
(schema.job_settings); each becomes one flag, ``--<flag>=<value>``: Google's
underscore names, booleans ``true``/``false`` (a boolean flag also takes
``--name`` and ``--noname``, as absl does). The flag's type, choices, default
and help are the schema's; ``job_values`` fills the values from the run's
settings, ``format_flags`` writes them on a command line, and
``job_settings_from_args`` reads them back as keyword arguments. The
workflow always passes every flag; a null setting is the empty value
(``--language=``). The programs' other arguments (files, directories) follow
the same spelling: ``--output_dir=...``.

Called by hand, a program may default otherwise than the schema, in one
table, ``HAND_DEFAULTS``: one that stands in for one of Google's keeps
Google's defaults; the export decides what a flag leaves out from the files
it reads.
"""

from __future__ import annotations

import argparse
import shlex

from .cli import FALSE_SPELLINGS, TRUE_SPELLINGS, add_bool_flag, str2bool
from .schema import PYTHON_TYPES, job_settings

# A program's defaults when called by hand, where they are not the schema's, by job.
HAND_DEFAULTS = {
    # create_pretraining_data.py: google-research/bert's defaults.
    "records": {
        "max_seq_length": 128,
        "max_predictions_per_seq": 20,
        "do_lower_case": True,
        "do_whole_word_mask": False,
        "random_seed": 12345,
        "dupe_factor": 10,
        "masked_lm_prob": 0.15,
        "short_seq_prob": 0.1,
    },
    # export_model.py: from the checkpoint (an NSP head or not) and the records' sidecars.
    "export": {"use_next_sentence_prediction": None, "do_lower_case": None},
}


def add_job_flags(parser: argparse.ArgumentParser, job: str, *, optional=()) -> None:
    """One argparse flag per setting of ``job``; one the schema gives no default is required unless in ``optional``."""
    for setting in job_settings(job):
        schema = setting.schema
        hand_defaults = HAND_DEFAULTS.get(job, {})
        has_default = "default" in schema or setting.flag in hand_defaults
        default = hand_defaults.get(setting.flag, schema.get("default"))
        help_text = " ".join(schema.get("description", "").split()).replace("%", "%%")
        help_text += "" if default is None else " (default: %(default)s)"
        if schema.get("type") == "boolean":
            add_bool_flag(parser, setting.flag, default, help_text)
            continue
        parser.add_argument(
            f"--{setting.flag}",
            type=flag_parser(schema),
            choices=schema.get("enum"),
            default=default,
            required=not has_default and setting.flag not in optional,
            help=help_text,
        )


def flag_parser(schema: dict):
    """The argparse type of a setting: its schema type; the empty value is null where null is allowed.

    An enumeration that holds booleans (``auto``, ``true``, ``false``) takes absl's boolean spellings.
    """
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    enum = schema.get("enum", ())
    nullable = "null" in kinds or None in enum
    booleans = any(isinstance(value, bool) for value in enum)

    def parse(text: str):
        if text == "" and nullable:
            return None
        if booleans and text.strip().lower() in TRUE_SPELLINGS + FALSE_SPELLINGS:
            return str2bool(text)
        for kind in kinds:
            if kind in ("integer", "number", "string"):
                return PYTHON_TYPES[kind](text)
        return text

    parse.__name__ = "/".join(kind for kind in kinds if kind != "null") or "value"  # argparse names it in errors
    return parse


def job_values(job: str, settings, phase=None) -> dict:
    """The flags of ``job`` for one phase of the run: ``{flag: value}``.

    A key the resolved phase holds (its batch, its schedule, its
    gradient_accumulation_steps) is the phase's value, else the section's.
    """
    values = {}
    for setting in job_settings(job):
        holder = phase if phase is not None and hasattr(phase, setting.key) else getattr(settings, setting.section)
        values[setting.flag] = getattr(holder, setting.key)
    return values


def job_settings_from_args(job: str, args: argparse.Namespace) -> dict:
    """The parsed flags of ``job`` as keyword arguments, named by flag."""
    return {setting.flag: getattr(args, setting.flag) for setting in job_settings(job)}


def format_flags(values: dict) -> str:
    """``--name=value`` words for a shell command line, quoted; booleans as true/false."""
    words = []
    for name, value in values.items():
        text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        words.append(f"--{name}={shlex.quote(text)}")
    return " ".join(words)
