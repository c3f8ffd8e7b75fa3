"""A job's settings as flags: one convention for every program the workflow runs.

The settings a job takes are the schema's keys whose ``x-jobs`` name it
(schema.job_settings); each becomes one flag, ``--<flag>=<value>``: Google's
underscore names, booleans ``true``/``false`` (a boolean flag also takes
``--name`` and ``--noname``, as absl does). The flag's type, choices, default
and help are the schema's; ``job_values`` fills the values from the run's
settings, ``format_flags`` writes them on a command line, and
``job_settings_from_args`` reads them back as keyword arguments. The
workflow always passes every flag.

Called by hand, a program that stands in for one of Google's keeps Google's
defaults where they differ from the schema's: ``GOOGLE_DEFAULTS``, the one
place they are written.
"""

from __future__ import annotations

import argparse
import shlex

from .cli import add_bool_flag
from .schema import job_settings

# Google's defaults of google-research/bert's programs, where ours stand in for them, by job.
GOOGLE_DEFAULTS = {
    # create_pretraining_data.py
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
}

def add_job_flags(parser: argparse.ArgumentParser, job: str, *, optional=()) -> None:
    """One argparse flag per setting of ``job``; one without a default is required unless in ``optional``."""
    for setting in job_settings(job):
        schema = setting.schema
        default = GOOGLE_DEFAULTS.get(job, {}).get(setting.flag, schema.get("default"))
        help_text = " ".join(schema.get("description", "").split()).replace("%", "%%")
        help_text += "" if default is None else " (default: %(default)s)"
        if schema.get("type") == "boolean":
            add_bool_flag(parser, setting.flag, default, help_text)
            continue
        parser.add_argument(
            f"--{setting.flag}",
            type=setting.python_type,
            choices=schema.get("enum"),
            default=default,
            required=default is None and setting.flag not in optional,
            help=help_text,
        )


def job_values(job: str, settings, phase) -> dict:
    """The flags of ``job`` for one phase of the run: ``{flag: value}``.

    A key the resolved phase holds (its batch, its schedule, its
    gradient_accumulation_steps) is the phase's value, else the section's.
    """
    values = {}
    for setting in job_settings(job):
        holder = phase if hasattr(phase, setting.key) else getattr(settings, setting.section)
        values[setting.flag] = getattr(holder, setting.key)
    return values


def job_settings_from_args(job: str, args: argparse.Namespace) -> dict:
    """The parsed flags of ``job`` as keyword arguments, named by flag."""
    return {setting.flag: getattr(args, setting.flag) for setting in job_settings(job)}


def format_flags(values: dict) -> str:
    """``--name=value`` words for a shell command line, quoted; booleans as true/false."""
    words = []
    for name, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        words.append(f"--{name}={shlex.quote(text)}")
    return " ".join(words)
