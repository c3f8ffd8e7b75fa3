"""The run's settings: one loader, one typed object, for every entry point.

The Snakefile, ``plan.py``, ``status.py``, the disk estimate and the command
lines of the training and evaluation jobs all read the run's settings here:

1. the config files are merged as Snakemake merges them (the workflow's
   ``config.yaml``, then each ``--configfile`` in order; mappings merge key
   by key, every other value, lists included, replaces);
2. the result is validated against ``workflow/schemas/config.schema.yaml``,
   the one place that declares each key, its type and its default, and the
   defaults are filled in;
3. the cross-field rules the schema cannot express are checked (phases that
   chain, lengths that fit the model, files that exist);
4. one frozen ``Settings`` is returned.

Each error names the key, its value and what was expected. Nothing here
imports TensorFlow or Snakemake.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import shutil
from dataclasses import dataclass

import yaml

from .bert_config import ARCHITECTURE_KEYS
from .corpus import expand_corpus_files
from .errors import ConfigError, VocabularyError
from .plan import Segment, plan_run
from .prepare import check_files
from .run_layout import RunLayout
from .schema import (
    SCHEMA_PATH,
    CorpusSettings,
    ModelSettings,
    PhaseSettings,
    RecordsSettings,
    TrainingSettings,
    VocabularySettings,
    config_schema,
)
from .source_model import SourceModel, check_weights, inspect_source

# Snakemake reads the Snakefile's `configfile: "config.yaml"` from the working directory.
WORKFLOW_CONFIG = "config.yaml"


@dataclass(frozen=True)
class Settings:
    run_name: str
    results_dir: str
    umask: str
    corpus: CorpusSettings
    vocabulary: VocabularySettings
    records: RecordsSettings
    model: ModelSettings
    training: TrainingSettings
    phases: tuple[PhaseSettings, ...]
    # The model continued from (init_from), and the config values it replaced: (key, config's, source's).
    init_from: SourceModel | None = None
    overridden: tuple[tuple[str, object, object], ...] = ()

    @property
    def run_dir(self) -> str:
        return os.path.join(self.results_dir, self.run_name)

    @property
    def layout(self) -> RunLayout:
        """Every path under the run directory (run_layout.py)."""
        return RunLayout(self.run_dir)

    def records_dir(self, max_seq_length: int) -> str:
        """The records of one sequence length: shard_*.tfrecord, heldout.tfrecord, records.json."""
        return self.layout.records_dir(max_seq_length)

    @functools.cached_property
    def segments(self) -> list[Segment]:
        """Every training segment of the run, in order: the DAG of the training rules."""
        return plan_run([dataclasses.asdict(phase) for phase in self.phases])

    def phase(self, name: str) -> PhaseSettings:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise ConfigError(f"no phase is named {name!r}; the phases are {', '.join(p.name for p in self.phases)}")

    def phase_for_length(self, max_seq_length: int) -> PhaseSettings:
        return self.phase(phase_name(int(max_seq_length)))


def phase_name(max_seq_length: int) -> str:
    """Phases are named by their sequence length: phase128, phase512."""
    return f"phase{max_seq_length}"


def default_warmup_steps(num_train_steps: int) -> int:
    """The mission's 1% warmup."""
    return num_train_steps // 100


# ---------------------------------------------------------------- loading


def load_settings(configfiles=(), workflow_config: str | None = WORKFLOW_CONFIG, overrides: dict | None = None) -> Settings:
    """The settings of the run that `snakemake --configfile F1 F2 ...` would execute.

    ``overrides`` are merged last, as Snakemake merges ``--config`` (a
    profile's ``config:`` key) over every config file.
    """
    return settings_from_config(merge_config(load_config(configfiles, workflow_config), overrides or {}))


def load_config(configfiles=(), workflow_config: str | None = WORKFLOW_CONFIG) -> dict:
    """The workflow's config.yaml with each config file merged over it, as Snakemake does."""
    config: dict = {}
    if workflow_config and os.path.exists(workflow_config):
        config = read_config_file(workflow_config)
    elif not configfiles:
        raise ConfigError(f"{os.path.abspath(workflow_config or WORKFLOW_CONFIG)} does not exist and no --configfile was given")
    for path in configfiles:
        config = merge_config(config, read_config_file(path))
    return config


def read_config_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"config file {path}: {error.strerror}; expected a readable YAML file") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"config file {path} holds a {type(content).__name__}; expected a mapping of keys")
    return content


def merge_config(base: dict, override: dict) -> dict:
    """Snakemake's update_config: mappings merge recursively, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if not isinstance(merged, dict):
            merged = {}  # as Snakemake: a mapping replaces a scalar (an empty one leaves it)
        if isinstance(value, dict):
            merged[key] = merge_config(merged.get(key, {}), value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def settings_from_config(config: dict) -> Settings:
    """Validate a merged config, fill in the schema's defaults, check it, type it."""
    config = copy.deepcopy(config)
    validate_against_schema(config)
    fill_defaults(config, config_schema())
    source = inspect_source(config["init_from"]) if config["init_from"] else None
    overridden = take_from_source(config, source) if source else ()
    settings = Settings(
        run_name=config["run_name"],
        results_dir=config["results_dir"],
        umask=str(config["umask"]),
        corpus=corpus_settings(config["corpus"]),
        vocabulary=VocabularySettings(**config["vocabulary"]),
        records=RecordsSettings(**config["records"]),
        model=ModelSettings(**config["model"]),
        training=TrainingSettings(**config["training"]),
        phases=resolve_phases(config["phases"], config["training"]),
        init_from=source,
        overridden=overridden,
    )
    check_settings(settings)
    return settings


def corpus_settings(section: dict) -> CorpusSettings:
    """The corpus section of a config as settings, the schema's defaults filled in (a job rebuilds its own here)."""
    section = copy.deepcopy(section)
    fill_defaults(section, config_schema()["properties"]["corpus"])
    return CorpusSettings(**{**section, "files": tuple(section["files"])})


def take_from_source(config: dict, source: SourceModel) -> tuple[tuple[str, object, object], ...]:
    """Set the vocabulary and model keys that the source fixes; return those whose config value differed.

    Dropout rates and next-sentence prediction stay the config's: they are
    training choices, not properties of the weights.
    """
    if config["vocabulary"]["file"]:
        raise ConfigError(
            f"vocabulary.file is {config['vocabulary']['file']!r} and init_from is {config['init_from']!r}; "
            "expected one of them (a continued model keeps its own vocabulary)"
        )
    taken = {
        **{("model", key): getattr(source.config, key) for key in ARCHITECTURE_KEYS},
        ("vocabulary", "size"): len(source.tokens),
        ("vocabulary", "do_lower_case"): source.do_lower_case,
    }
    overridden = []
    for (section, key), value in taken.items():
        if config[section][key] != value:
            overridden.append((f"{section}.{key}", config[section][key], value))
        config[section][key] = value
    return tuple(overridden)


def init_from_report(settings: Settings) -> list[str]:
    """What the run takes from the model it continues from, its weights checked first (before submission).

    The plan and the workflow print these lines; a source whose weights do
    not fit the run's model is a ConfigError.
    """
    source = settings.init_from
    if source is None:
        return []
    fresh = check_weights(source, settings.model.use_next_sentence_prediction)
    lines = [f"continues from {source.describe()}"]
    lines += [f"{key} is {new!r} from the source (the config says {old!r})" for key, old, new in settings.overridden]
    lines += [f"the source has no {head}: it is initialised fresh" for head in fresh]
    return lines


def key_path(path) -> str:
    """jsonschema's path as the config key a user writes: phases[1].last_step."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validate_against_schema(config: dict) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(config), key=lambda error: list(map(str, error.absolute_path)))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        where = key_path(error.absolute_path) or "the config"
        value = "" if not error.absolute_path else f" (value {error.instance!r})"
        raise ConfigError(f"{where}{value}: {error.message}; see {SCHEMA_PATH.name} for the expected form")


def fill_defaults(instance: dict, schema: dict) -> None:
    """Set every missing key that has a default; missing optional sections get theirs too."""
    for key, subschema in schema.get("properties", {}).items():
        if key not in instance:
            if "default" in subschema:
                instance[key] = copy.deepcopy(subschema["default"])
            elif subschema.get("type") == "object":
                instance[key] = {}
        if isinstance(instance.get(key), dict):
            fill_defaults(instance[key], subschema)


def resolve_phases(phases: list[dict], training: dict) -> tuple[PhaseSettings, ...]:
    """Names and schedule defaults of the phases.

    ``num_train_steps`` defaults to the phase's last step and
    ``num_warmup_steps`` to 1% of it. With ``learning_rate_schedule:
    continuous`` every phase shares one warmup and one decay over the whole
    run, so a phase's own values are replaced.
    """
    run_last_step = phases[-1]["last_step"]
    continuous = training["learning_rate_schedule"] == "continuous"
    first_warmup = phases[0].get("num_warmup_steps")
    resolved = []
    for phase in phases:
        if continuous:
            num_train_steps = run_last_step
            num_warmup_steps = first_warmup if first_warmup is not None else default_warmup_steps(run_last_step)
        else:
            num_train_steps = phase.get("num_train_steps", phase["last_step"])
            num_warmup_steps = phase.get("num_warmup_steps", default_warmup_steps(num_train_steps))
        resolved.append(
            PhaseSettings(
                name=phase_name(phase["max_seq_length"]),
                max_seq_length=phase["max_seq_length"],
                max_predictions_per_seq=phase["max_predictions_per_seq"],
                batch_size_per_gpu=phase["batch_size_per_gpu"],
                first_step=phase["first_step"],
                last_step=phase["last_step"],
                num_train_steps=num_train_steps,
                num_warmup_steps=num_warmup_steps,
                segment_steps=phase["segment_steps"],
                gradient_accumulation_steps=phase.get(
                    "gradient_accumulation_steps", training["gradient_accumulation_steps"]
                ),
            )
        )
    return tuple(resolved)


# ---------------------------------------------------------------- checks


def check_settings(settings: Settings) -> None:
    """Raise ConfigError for the first inconsistency the schema cannot see, naming the key."""
    model = settings.model
    if model.hidden_size % model.num_attention_heads:
        raise ConfigError(
            f"model.hidden_size is {model.hidden_size}, which num_attention_heads "
            f"{model.num_attention_heads} does not divide; expected a multiple of it"
        )
    names = [phase.name for phase in settings.phases]
    for index, phase in enumerate(settings.phases):
        check_phase(f"phases[{index}]", phase, settings, names.count(phase.name) > 1)
    settings.segments  # noqa: B018 -- phases that do not chain are refused by the plan itself
    if settings.phases[0].first_step != 0:
        raise ConfigError(
            f"phases[0].first_step is {settings.phases[0].first_step}; expected 0 (training starts from scratch)"
        )
    if not int(settings.umask, 8) & 0o002:
        raise ConfigError(
            f"umask is {settings.umask}, which leaves outputs world-writable; "
            "expected a mask that includes 002 (for example 0007 or 0027)"
        )
    if settings.vocabulary.file:
        check_vocabulary_file(settings.vocabulary.file, "vocabulary.file")
    corpus_files(settings)
    training_python(settings)


def check_phase(key: str, phase: PhaseSettings, settings: Settings, duplicate_length: bool) -> None:
    if duplicate_length:
        raise ConfigError(
            f"{key}.max_seq_length is {phase.max_seq_length} for two phases; "
            "expected a different sequence length per phase (each phase has its own records)"
        )
    if phase.max_seq_length > settings.model.max_position_embeddings:
        source = f", the positions of init_from {settings.init_from.directory}" if settings.init_from else ""
        raise ConfigError(
            f"{key}.max_seq_length is {phase.max_seq_length}; expected at most "
            f"model.max_position_embeddings ({settings.model.max_position_embeddings}{source})"
        )
    if phase.max_predictions_per_seq > phase.max_seq_length - 3:
        raise ConfigError(
            f"{key}.max_predictions_per_seq is {phase.max_predictions_per_seq}; expected at most "
            f"max_seq_length - 3 = {phase.max_seq_length - 3} ([CLS] and two [SEP] are never masked)"
        )
    wanted = expected_predictions(phase.max_seq_length, settings.records.masked_lm_prob)
    if phase.max_predictions_per_seq < wanted:
        raise ConfigError(
            f"{key}.max_predictions_per_seq is {phase.max_predictions_per_seq}, fewer than "
            f"records.masked_lm_prob {settings.records.masked_lm_prob} x max_seq_length {phase.max_seq_length} "
            f"= {wanted} masked positions of a full sequence; expected at least {wanted} "
            "(a smaller value silently masks fewer tokens than masked_lm_prob says)"
        )
    if phase.num_warmup_steps > phase.num_train_steps:
        raise ConfigError(
            f"{key}.num_warmup_steps is {phase.num_warmup_steps}; expected at most "
            f"num_train_steps ({phase.num_train_steps})"
        )
    if phase.last_step <= phase.first_step:
        raise ConfigError(
            f"{key}.last_step is {phase.last_step}; expected a step after first_step {phase.first_step}"
        )


def expected_predictions(max_seq_length: int, masked_lm_prob: float) -> int:
    """Masked positions of a full sequence, as Google's create_masked_lm_predictions counts them."""
    return max(1, int(round(max_seq_length * masked_lm_prob)))


def corpus_files(settings: Settings) -> list[str]:
    """The corpus files matched by ``corpus.files``, sorted; each glob must match.

    A file whose format cannot be told is refused, or left out with
    ``corpus.on_bad_record: skip``; so is splitting without a language.
    """
    files = expand_corpus_files(settings.corpus.files, "corpus.files", error=ConfigError)
    return check_files(files, settings.corpus)


def training_python(settings: Settings, basedir: str = ".") -> str | None:
    """The interpreter of ``training.python`` as a usable path (None: Snakemake's own).

    A value with a slash is a path (relative ones to ``basedir``); a bare
    name is looked up on PATH, as the job's shell would.
    """
    value = settings.training.python
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
    """A given vocabulary must be a readable vocab.txt with BERT's special tokens."""
    from .tokenization import read_vocabulary

    try:
        read_vocabulary(path)
    except VocabularyError as error:
        raise ConfigError(f"{key}: {error}") from None
