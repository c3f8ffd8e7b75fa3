"""The config schema, the one declaration of every setting, and what is derived from it.

``workflow/schemas/config.schema.yaml`` declares each key of a run's config:
its type, default, allowed values and help. From it, and from nothing else,
come:

* the typed settings of each section (``TrainingSettings`` and the others:
  frozen dataclasses with one field per key, in the schema's order);
* the settings each job takes as flags (``job_settings``): a key names the
  jobs that take it in ``x-jobs`` and, where a program stands in for one of
  Google's, Google's flag name in ``x-flag`` (job_flags.py turns these into
  argparse flags and command lines).

So a new setting is one schema entry; this module is at the bottom of the
package (it imports nothing of it), so every module may read the schema.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

# The sections whose keys a job can take, in the order their flags are listed.
JOB_SECTIONS = ("phases", "training", "model", "vocabulary", "records", "corpus")


@functools.cache
def config_schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def section_schema(section: str) -> dict:
    """The schema of a section's keys (for ``phases``: of one phase)."""
    node = config_schema()["properties"][section]
    return node["items"] if node.get("type") == "array" else node


def setting_schema(section: str, key: str) -> dict:
    """The schema of one key: ``("training", "learning_rate")`` or ``("phases", "max_seq_length")``."""
    return section_schema(section)["properties"][key]


PYTHON_TYPES = {"integer": int, "number": float, "string": str, "boolean": bool, "array": tuple, "object": dict}


def python_type(schema: dict):
    """The annotation of a key: ``[integer, "null"]`` is ``int | None``; anything looser is ``object``."""
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    types = [PYTHON_TYPES[kind] for kind in kinds if kind != "null"]
    if len(types) != 1:
        return object
    return types[0] | None if "null" in kinds else types[0]


def settings_class(class_name: str, section: str, *, leading=(), methods=None) -> type:
    """A frozen dataclass with one field per key of ``section``, after the ``leading`` (name, type) fields."""
    fields = [*leading, *((key, python_type(schema)) for key, schema in section_schema(section)["properties"].items())]
    doc = " ".join(str(section_schema(section).get("description", f"The {section} section of the config.")).split())
    cls = dataclasses.make_dataclass(class_name, fields, frozen=True, namespace=dict(methods or {}, __doc__=doc))
    cls.__module__ = __name__
    return cls


def _bert_config_keys(self) -> dict:
    """The keys of Google's bert_config.json, those the bert_config job takes (vocab_size: the vocabulary's)."""
    return {setting.key: getattr(self, setting.key) for setting in job_settings("bert_config")}


CorpusSettings = settings_class("CorpusSettings", "corpus")
VocabularySettings = settings_class("VocabularySettings", "vocabulary")
RecordsSettings = settings_class("RecordsSettings", "records")
ModelSettings = settings_class("ModelSettings", "model", methods={"bert_config": _bert_config_keys})
TrainingSettings = settings_class("TrainingSettings", "training")
# One phase with its name and schedule defaults resolved (settings.resolve_phases).
PhaseSettings = settings_class("PhaseSettings", "phases", leading=[("name", str)])


@dataclass(frozen=True)
class JobSetting:
    """A setting that a job takes as a flag: ``--<flag>`` carries ``<section>.<key>``."""

    section: str
    key: str

    @property
    def schema(self) -> dict:
        return setting_schema(self.section, self.key)

    @property
    def flag(self) -> str:
        return self.schema.get("x-flag", self.key)

    @property
    def python_type(self):
        return python_type(self.schema)


@functools.cache
def job_settings(job: str) -> tuple[JobSetting, ...]:
    """The settings job ``job`` takes (``x-jobs`` in the schema), in the schema's order."""
    found = []
    for section in JOB_SECTIONS:
        for key, schema in section_schema(section)["properties"].items():
            if job in schema.get("x-jobs", ()):
                found.append(JobSetting(section, key))
    flags = [setting.flag for setting in found]
    duplicates = sorted({flag for flag in flags if flags.count(flag) > 1})
    if duplicates:
        raise AssertionError(f"{SCHEMA_PATH.name}: job {job} takes flag(s) {', '.join(duplicates)} twice")
    return tuple(found)


def job_settings_class(class_name: str, job: str, *, leading, doc: str) -> type:
    """A dataclass of the ``leading`` (name, type) fields, then one field per setting of ``job``, named by flag.

    The settings' defaults are the schema's; every field is keyword-only.
    """
    fields = list(leading)
    for setting in job_settings(job):
        default = setting.schema.get("default", dataclasses.MISSING)
        fields.append((setting.flag, setting.python_type, dataclasses.field(default=default)))
    cls = dataclasses.make_dataclass(class_name, fields, kw_only=True, namespace={"__doc__": doc})
    return cls


def schema_choices(section: str, key: str) -> tuple:
    """The allowed values of an enumerated key."""
    return tuple(setting_schema(section, key)["enum"])


def schema_default(section: str, key: str):
    return setting_schema(section, key)["default"]
