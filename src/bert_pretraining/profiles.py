"""What a Snakemake profile (``--profile DIR``) tells the workflow, read without Snakemake.

The plan (workflow/scripts/plan.py --profile) reads the training jobs'
resources and the profile's ``config:`` overrides here, as Snakemake would
apply them, so it can print the ranks and global batch of a run that is not
submitted yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ConfigError
from .job_resources import TRAINING_RULE_RESOURCES, check_training_job, combine_resources, training_rule
from .settings import read_config_file


@dataclass(frozen=True)
class Profile:
    """A profile directory's config.yaml, read once."""

    path: str
    values: dict

    @classmethod
    def read(cls, profile_dir: str) -> Profile:
        path = os.path.join(profile_dir, "config.yaml")
        if not os.path.isfile(path):
            raise ConfigError(
                f"profile {profile_dir}: there is no {path}; expected a Snakemake profile directory such as profiles/slurm"
            )
        return cls(path, read_config_file(path))

    def config(self) -> dict:
        """The config values the profile sets (its ``config:`` key), which Snakemake merges over every config file."""
        value = self.values.get("config") or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: config is {value!r}; expected a mapping of config keys")
        return value

    def resources(self, rule: str, declared: dict) -> dict:
        """A rule's resources under ``snakemake --profile DIR``, before evaluation.

        default-resources and set-resources may be mappings or Snakemake's
        command-line lists ("mem_mb=8000", "rule:nodes=2").
        """
        overrides = self.values.get("set-resources") or {}
        if isinstance(overrides, list):
            prefix = f"{rule}:"
            own = [item[len(prefix):] for item in map(str, overrides) if item.startswith(prefix)]
        elif isinstance(overrides, dict):
            own = overrides.get(rule)
        else:
            raise ConfigError(f"{self.path}: set-resources is {overrides!r}; expected a mapping of rule names to resources")
        return combine_resources(
            _resource_mapping(self.values.get("default-resources"), f"{self.path}: default-resources"),
            declared,
            _resource_mapping(own, f"{self.path}: set-resources of {rule}"),
        )

    def training_ranks(self, settings) -> dict[str, int]:
        """The ranks of each phase's training jobs under the profile, checked as `snakemake -n` checks them."""
        return {
            phase.name: check_training_job(
                settings, phase, training_rule(phase.name),
                self.resources(training_rule(phase.name), TRAINING_RULE_RESOURCES),
            )
            for phase in settings.phases
        }


def _resource_mapping(value, where: str) -> dict:
    if not value:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list) and all(isinstance(item, str) and "=" in item for item in value):
        return dict(item.split("=", 1) for item in value)
    raise ConfigError(f"{where} is {value!r}; expected a mapping of resources (or a list of name=value)")
