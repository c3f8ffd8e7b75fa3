"""A profile read without Snakemake (bert_pretraining.profiles) and the plan's ranks and global batch from it."""

import json
import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bert_pretraining.errors import ConfigError
from bert_pretraining.profiles import Profile
from bert_pretraining.settings import phase_name
from workflow_helpers import REPO, demo_dag_config, load_yaml, run_script, snakemake, write_yaml

RULE = "pretrain_phase128"
# The repository's profiles: ranks of a training job (nodes x GPUs per node) as their comments state them.
PROFILE_RANKS = {"slurm": 8, "slurm-mahti": 8, "slurm-roihu": 4, "slurm-lumi": 16}


def write_profile(directory, profile):
    directory.mkdir(exist_ok=True)
    write_yaml(directory / "config.yaml", profile)
    return str(directory)


def profile_resources(profile_dir, rule, declared):
    return Profile.read(profile_dir).resources(rule, declared)


def plan(*args):
    result = run_script("plan.py", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_set_resources_win_over_the_rules_own_and_the_defaults(tmp_path):
    profile = write_profile(tmp_path / "p", {
        "default-resources": {"nodes": 3, "mem_mb": 8000, "runtime": 120},
        "set-resources": {RULE: {"nodes": 2, "mpi": "srun"}, "other": {"nodes": 9}},
    })
    assert profile_resources(profile, RULE, {"nodes": 1, "runtime": 60}) == {
        "nodes": 2, "mem_mb": 8000, "runtime": 60, "mpi": "srun"}


def test_snakemakes_command_line_lists_are_read_as_well(tmp_path):
    profile = write_profile(tmp_path / "p", {
        "default-resources": ["mem_mb=8000", "slurm_partition=small"],
        "set-resources": [f"{RULE}:nodes=2", f"{RULE}:tasks_per_node=4", "other:nodes=9"],
    })
    assert profile_resources(profile, RULE, {}) == {
        "mem_mb": "8000", "slurm_partition": "small", "nodes": "2", "tasks_per_node": "4"}


resources = st.dictionaries(st.sampled_from(["nodes", "tasks_per_node", "mem_mb", "gres", "mpi"]),
                            st.integers(1, 64), max_size=5)


@given(defaults=resources, declared=resources, own=resources)
def test_resources_merge_as_snakemake_merges_them(tmp_path_factory, defaults, declared, own):
    profile = write_profile(tmp_path_factory.mktemp("p"), {"default-resources": defaults, "set-resources": {RULE: own}})
    assert profile_resources(profile, RULE, declared) == {**defaults, **declared, **own}


def test_a_missing_or_malformed_profile_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"profile {tmp_path}: there is no {tmp_path}/config.yaml"):
        profile_resources(str(tmp_path), RULE, {})
    profile = write_profile(tmp_path / "p", {"set-resources": "nodes=2", "config": ["x"]})
    with pytest.raises(ConfigError, match="set-resources is 'nodes=2'; expected a mapping of rule names"):
        profile_resources(profile, RULE, {})
    with pytest.raises(ConfigError, match=r"config is \['x'\]; expected a mapping of config keys"):
        Profile.read(profile).config()


@pytest.mark.parametrize("name", sorted(PROFILE_RANKS))
def test_the_plan_gives_each_profiles_ranks_and_global_batch(name):
    planned = json.loads(plan("--profile", os.path.join(REPO, "profiles", name), "--json"))
    ranks = PROFILE_RANKS[name]
    assert planned["ranks"] == {"phase128": ranks, "phase512": ranks}
    # config.yaml: 140 (phase 1) and 20 (phase 2) sequences per GPU, no accumulation.
    assert planned["global_batch"] == {"phase128": 140 * ranks, "phase512": 20 * ranks}


def test_the_plan_applies_the_profiles_config():
    """profiles/slurm-roihu sets training.precision: bf16 (its `config:` key), as Snakemake merges it over config.yaml."""
    assert "config" in load_yaml(os.path.join(REPO, "profiles", "slurm-roihu", "config.yaml"))
    assert ", bf16, " in plan("--profile", os.path.join(REPO, "profiles", "slurm-roihu"))
    assert ", fp16, " in plan("--profile", os.path.join(REPO, "profiles", "slurm"))


@pytest.mark.snakemake
def test_the_plans_ranks_are_the_dry_runs_srun_geometry(tmp_path):
    """A geometry unlike any profile's (1 node x 2 GPUs, 3 micro-batches): the plan and `snakemake -n` agree."""
    profile = load_yaml(os.path.join(REPO, "profiles", "slurm", "config.yaml"))
    for rule in ("pretrain_phase128", "pretrain_phase512"):
        profile["set-resources"][rule].update(nodes=1, tasks_per_node=2, gres="gpu:a100:2")
    directory = write_profile(tmp_path / "profile", profile)
    config = demo_dag_config()
    config["training"]["gradient_accumulation_steps"] = 3
    config["results_dir"] = str(tmp_path / "results")
    path = str(write_yaml(tmp_path / "mine.yaml", config))

    planned = json.loads(plan("--configfile", path, "--profile", directory, "--json"))
    env = os.environ | {"SBATCH_ACCOUNT": "project_2001234"}
    result = snakemake(REPO, "-n", "-p", "--configfile", path, "--profile", directory, timeout=300, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    geometry = set(re.findall(r"srun --nodes=(\d+) --ntasks-per-node=(\d+) ", output))
    assert geometry == {("1", "2")}, geometry
    assert planned["ranks"] == {phase["name"]: 2 for phase in planned_phases(config)}
    assert planned["global_batch"] == {
        phase["name"]: phase["batch_size_per_gpu"] * 3 * 2 for phase in planned_phases(config)}
    text = plan("--configfile", path, "--profile", directory)
    assert f"x 3 micro-batches x 2 ranks = {config['phases'][0]['batch_size_per_gpu'] * 6:,} sequences per step" in text


def planned_phases(config):
    return [{"name": phase_name(phase["max_seq_length"]), **phase} for phase in config["phases"]]
