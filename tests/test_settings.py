"""The one settings loader: merged as Snakemake merges, validated with the schema's defaults, typed."""

import dataclasses
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from snakemake.utils import update_config

from bert_pretraining import settings as settings_module
from bert_pretraining.errors import ConfigError
from bert_pretraining import schema as schema_module
from bert_pretraining.job_flags import add_job_flags, job_settings_from_args, job_values
from bert_pretraining.schema import config_schema, job_settings
from bert_pretraining.settings import (
    load_config,
    load_settings,
    merge_config,
    settings_from_config,
)
from workflow_helpers import REPO, write_yaml

WORKFLOW_CONFIG = os.path.join(REPO, "config.yaml")
DEMO = os.path.join(REPO, "demo", "config.yaml")

keys = st.sampled_from(["a", "b", "c", "d"])
leaves = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=3))
nested = st.recursive(leaves, lambda children: st.dictionaries(keys, children, max_size=4), max_leaves=12)
mappings = st.dictionaries(keys, nested, max_size=4)


@given(mappings, mappings, mappings)
def test_merge_is_snakemakes_update_config(base, first, second):
    expected = {}
    for layer in (base, first, second):
        update_config(expected, layer)
    assert merge_config(merge_config(base, first), second) == expected


def test_sections_are_the_schemas_keys():
    """Each typed section has exactly the keys the schema declares (no key is declared twice)."""
    schema = config_schema()["properties"]
    sections = {
        "corpus": schema_module.CorpusSettings, "vocabulary": schema_module.VocabularySettings,
        "records": schema_module.RecordsSettings, "model": schema_module.ModelSettings,
        "training": schema_module.TrainingSettings,
    }
    for section, cls in sections.items():
        assert {field.name for field in dataclasses.fields(cls)} == set(schema[section]["properties"]), section
    phase_fields = {field.name for field in dataclasses.fields(schema_module.PhaseSettings)}
    assert phase_fields - {"name"} == set(schema["phases"]["items"]["properties"])
    derived = {"overridden"}  # what init_from replaced: a consequence of the keys, not a key
    assert {field.name for field in dataclasses.fields(settings_module.Settings)} - derived == set(schema)


JOBS = ["train", "evaluate", "records", "prepare", "shard", "vocab", "bert_config", "export"]


@pytest.mark.parametrize("job", JOBS)
def test_job_flags_carry_every_setting_of_the_job_and_read_back(job, monkeypatch):
    """Each flag of a job has help and a value in the run; parsing the command line gives the values back."""
    import argparse
    import shlex

    from bert_pretraining.job_flags import format_flags

    monkeypatch.chdir(REPO)
    settings = load_settings([DEMO])
    values = job_values(job, settings, settings.phases[0])
    assert values and all(setting.schema.get("description") for setting in job_settings(job))
    parser = argparse.ArgumentParser()
    add_job_flags(parser, job)
    assert job_settings_from_args(job, parser.parse_args(shlex.split(format_flags(values)))) == values


def test_partial_config_takes_the_rest_from_config_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    mine = write_yaml(tmp_path / "mine.yaml", {"run_name": "mine", "corpus": {"files": ["demo/corpus/python-docs-1.txt"]}})
    settings = load_settings([str(mine)])
    production = load_settings()
    assert settings.run_name == "mine" and settings.run_dir == os.path.join("results", "mine")
    assert settings.corpus.files == ("demo/corpus/python-docs-1.txt",)
    assert settings.corpus.num_shards == production.corpus.num_shards  # merged key by key
    assert settings.segments == production.segments


def test_defaults_come_from_the_schema(tmp_path, monkeypatch):
    """A config that names only the required keys gets every other value from the schema."""
    monkeypatch.chdir(REPO)
    minimal = {
        "run_name": "minimal",
        "corpus": {"files": ["demo/corpus/*.txt"]},
        "vocabulary": {}, "records": {}, "model": {}, "training": {},
        "phases": [{"max_seq_length": 128, "max_predictions_per_seq": 20, "batch_size_per_gpu": 8,
                    "first_step": 0, "last_step": 1000, "segment_steps": 400}],
    }
    settings = settings_from_config(minimal)
    training = config_schema()["properties"]["training"]["properties"]
    for field in dataclasses.fields(settings.training):
        assert getattr(settings.training, field.name) == training[field.name]["default"], field.name
    assert settings.results_dir == config_schema()["properties"]["results_dir"]["default"]
    phase = settings.phases[0]
    assert (phase.num_train_steps, phase.num_warmup_steps, phase.gradient_accumulation_steps) == (1000, 10, 1)
    assert [(s.start_step, s.end_step) for s in settings.segments] == [(0, 400), (400, 800), (800, 1000)]


def test_lists_replace_and_later_files_win(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    first = write_yaml(tmp_path / "1.yaml", {"training": {"learning_rate": 0.5, "seed": 1}})
    second = write_yaml(tmp_path / "2.yaml", {"training": {"seed": 2}, "phases": [
        {"max_seq_length": 64, "max_predictions_per_seq": 10, "batch_size_per_gpu": 4,
         "first_step": 0, "last_step": 10, "segment_steps": 5}]})
    config = load_config([str(first), str(second)], WORKFLOW_CONFIG)
    assert config["training"]["learning_rate"] == 0.5 and config["training"]["seed"] == 2
    assert config["training"]["precision"] == "fp16"  # untouched keys stay
    assert len(config["phases"]) == 1  # a list replaces, as in Snakemake


@pytest.mark.parametrize(
    "content, expected",
    [
        ("run_name: [unclosed", "is not valid YAML"),
        ("- a list\n", "holds a list; expected a mapping"),
    ],
)
def test_unreadable_config_files_are_named(tmp_path, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=expected) as raised:
        load_config([str(path)], WORKFLOW_CONFIG)
    assert str(path) in str(raised.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no.yaml"):
        load_config([str(tmp_path / "no.yaml")], WORKFLOW_CONFIG)


def test_schema_errors_name_the_key_and_value(monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config([DEMO], WORKFLOW_CONFIG)
    config["phases"][1]["batch_size_per_gpu"] = 0
    with pytest.raises(ConfigError, match=r"phases\[1\]\.batch_size_per_gpu \(value 0\)"):
        settings_from_config(config)


@pytest.mark.parametrize("job", JOBS)
def test_a_setting_reaches_its_job_with_any_valid_value(job):
    """Property: for every setting of every job, a value of its schema's type is written and read back unchanged."""
    import argparse
    import shlex

    from hypothesis import given as given_values
    from hypothesis import settings as hypothesis_settings

    from bert_pretraining.job_flags import format_flags

    def values_of(schema):
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        strategies = {
            "integer": st.integers(min_value=0, max_value=10**9),
            "number": st.floats(min_value=0, max_value=1e6, allow_nan=False),
            "boolean": st.booleans(),
            "string": st.text(alphabet="abcxyz_.-", min_size=1, max_size=8),
            "null": st.none(),
        }
        return st.one_of(*(strategies[kind] for kind in kinds))

    settings_of_job = job_settings(job)
    parser = argparse.ArgumentParser()
    add_job_flags(parser, job)

    @hypothesis_settings(max_examples=25, deadline=None)
    @given_values(st.fixed_dictionaries({s.flag: values_of(s.schema) for s in settings_of_job}))
    def round_trip(values):
        parsed = parser.parse_args(shlex.split(format_flags(values)))
        assert job_settings_from_args(job, parsed) == values

    round_trip()
