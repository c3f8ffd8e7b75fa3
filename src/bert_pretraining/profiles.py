"""What a Snakemake profile (``--profile DIR``) tells the workflow, read without Snakemake.

The plan (workflow/scripts/plan.py --profile) reads the training jobs'
resources and the profile's ``config:`` overrides here, as Snakemake would
apply them, so it can print the ranks and global batch of a run that is not
submitted yet.
"""

from __future__ import annotations

import os

from .errors import ConfigError
from .job_resources import TRAINING_RULE_RESOURCES, check_training_job, training_rule
from .settings import read_config_file


def read_profile(profile_dir: str) -> dict:
    """The profile's config.yaml, or a ConfigError naming the directory."""
    path = profile_path(profile_dir)
    if not os.path.isfile(path):
        raise ConfigError(
            f"profile {profile_dir}: there is no {path}; expected a Snakemake profile directory such as profiles/slurm"
        )
    return read_config_file(path)


def profile_path(profile_dir: str) -> str:
    return os.path.join(profile_dir, "config.yaml")


def profile_config(profile_dir: str) -> dict:
    """The config values the profile sets (its ``config:`` key), which Snakemake merges over every config file."""
    value = read_profile(profile_dir).get("config") or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{profile_path(profile_dir)}: config is {value!r}; expected a mapping of config keys")
    return value


def profile_training_ranks(settings, profile_dir: str) -> dict[str, int]:
    """The ranks of each phase's training jobs under the profile, checked as `snakemake -n` checks them."""
    return {
        phase.name: check_training_job(
            settings, phase, training_rule(phase.name),
            profile_resources(profile_dir, training_rule(phase.name), TRAINING_RULE_RESOURCES),
        )
        for phase in settings.phases
    }


def profile_resources(profile_dir: str, rule: str, declared: dict) -> dict:
    """A rule's resources under ``snakemake --profile DIR``, before evaluation.

    As Snakemake combines them: the profile's default-resources, the rule's
    own (``declared``), then the profile's set-resources for the rule. Both
    keys may be mappings or Snakemake's command-line lists ("mem_mb=8000",
    "rule:nodes=2").
    """
    path = profile_path(profile_dir)
    profile = read_profile(profile_dir)
    defaults = _resource_mapping(profile.get("default-resources"), f"{path}: default-resources")
    overrides = profile.get("set-resources") or {}
    if isinstance(overrides, list):
        prefix = f"{rule}:"
        own = [item[len(prefix):] for item in map(str, overrides) if item.startswith(prefix)]
    elif isinstance(overrides, dict):
        own = overrides.get(rule)
    else:
        raise ConfigError(f"{path}: set-resources is {overrides!r}; expected a mapping of rule names to resources")
    return {**defaults, **declared, **_resource_mapping(own, f"{path}: set-resources of {rule}")}


def _resource_mapping(value, where: str) -> dict:
    if not value:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list) and all(isinstance(item, str) and "=" in item for item in value):
        return dict(item.split("=", 1) for item in value)
    raise ConfigError(f"{where} is {value!r}; expected a mapping of resources (or a list of name=value)")
