"""The resources a profile gives the jobs, checked before anything is submitted.

A training job starts ``nodes x tasks_per_node`` ranks (one per GPU) when the
profile gives its rule the ``mpi`` launcher, as a SLURM profile does; without
it the job is one process. The Snakefile passes each rule's resources as the
profile wrote them (``--default-resources`` and ``--set-resources`` values
before evaluation), so a mistake is refused by ``snakemake -n`` with the key
named, not by sbatch, and not by the eighth rank after two days in the queue.
"""

from __future__ import annotations

import os
import re

from .errors import ConfigError, WorkflowError

# A local run trains in one process; a profile gives nodes, tasks_per_node and mpi.
TRAINING_RULE_RESOURCES = {"nodes": 1, "tasks_per_node": 1}


def training_rule(phase_name: str) -> str:
    """The rule that trains a phase's segments (rules/pretrain.smk)."""
    return f"pretrain_{phase_name}"


def combine_resources(defaults: dict, declared: dict, overrides: dict) -> dict:
    """A rule's resources as Snakemake combines them: the defaults, the rule's own, then --set-resources."""
    return {**defaults, **declared, **overrides}


# $NAME or ${NAME}: Snakemake expands them from the environment when the job is submitted.
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def plain(value):
    """A resource as written on the command line or in a profile: "'gpu'" is the string gpu."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def as_count(rule: str, resources: dict, name: str, default: int = 1) -> int:
    value = plain(resources.get(name, default))
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"resource {name} of rule {rule} is {value!r}; expected a whole number"
        ) from None
    if count < 1:
        raise ConfigError(f"resource {name} of rule {rule} is {count}; expected 1 or more")
    return count


def training_ranks(rule: str, resources: dict) -> int:
    """The ranks the rule's job starts: nodes x tasks_per_node under an mpi launcher, else 1."""
    if not plain(resources.get("mpi")):
        return 1
    return as_count(rule, resources, "nodes") * as_count(rule, resources, "tasks_per_node")


def gpus_per_node(gres) -> int | None:
    """4 for gpu:v100:4 or gpu:4; None when gres names no GPUs."""
    for item in str(plain(gres) or "").split(","):
        parts = item.strip().split(":")
        if parts[0] == "gpu" and len(parts) > 1 and parts[-1].isdigit():
            return int(parts[-1])
    return None


def check_training_resources(rule: str, resources: dict) -> None:
    """Resources of a training rule that contradict each other."""
    nodes = as_count(rule, resources, "nodes")
    launcher = plain(resources.get("mpi"))
    if "tasks" in resources and "tasks_per_node" in resources and launcher:
        raise ConfigError(
            f"rule {rule} sets both resources tasks ({resources['tasks']}) and tasks_per_node "
            f"({resources['tasks_per_node']}); expected tasks_per_node only (one rank per GPU on each node; "
            "the SLURM plugin turns tasks into --ntasks-per-gpu, which sbatch refuses beside --ntasks-per-node)"
        )
    if nodes > 1 and not launcher:
        raise ConfigError(
            f"rule {rule} has resources nodes={nodes} but no mpi launcher; expected mpi: srun "
            "(without it the job runs one process on the first node and the other nodes idle)"
        )
    if launcher:
        tasks_per_node = as_count(rule, resources, "tasks_per_node")
        gpus = gpus_per_node(resources.get("gres"))
        if gpus is not None and tasks_per_node > gpus:
            raise ConfigError(
                f"rule {rule} has resources tasks_per_node={tasks_per_node} but gres={plain(resources['gres'])!r} "
                f"gives {gpus} GPUs per node; expected at most one rank per GPU (tasks_per_node <= {gpus})"
            )


def check_environment_references(where: str, resources: dict) -> None:
    """A resource that names an unset environment variable would reach sbatch as literal text."""
    for name, value in resources.items():
        if not isinstance(value, str):
            continue
        for match in _VARIABLE.finditer(value):
            variable = match.group(1) or match.group(2)
            if variable not in os.environ:
                raise ConfigError(
                    f"{where}: resource {name} is {value!r}, but the environment variable {variable} is not set; "
                    f"expected `export {variable}=...` before running Snakemake (sbatch would receive the text "
                    f"{value!r}), or the value written in the profile"
                )


def check_training_job(settings, phase, rule: str, resources: dict, *, check_records: bool = True) -> int:
    """The ranks of a phase's training jobs, checked against its records; ConfigError naming the keys.

    Every rank reads its own record files (one per corpus shard). Once the
    records exist, each rank's share must also hold a batch, unless
    ``check_records`` is False: a cluster job of another rule parses the
    Snakefile too, and must not fail for a phase it does not train (the
    phase's check_<phase> job refuses the segment, once).
    """
    from .record_shares import check_rank_shares, records_per_file
    from .records_sidecar import read_records_sidecar

    check_training_resources(rule, resources)
    ranks = training_ranks(rule, resources)
    shards = settings.corpus.num_shards
    if ranks > shards:
        raise ConfigError(
            f"corpus.num_shards is {shards}, but rule {rule} starts {ranks} ranks "
            f"(resources nodes={plain(resources.get('nodes'))} x tasks_per_node={plain(resources.get('tasks_per_node'))}); "
            f"expected at least one record file per rank: set corpus.num_shards to a multiple of {ranks} "
            f"(for example {ranks * max(1, -(-shards // ranks))}), or give {rule} fewer nodes or tasks_per_node"
        )
    sidecar_path = settings.layout.records_sidecar(phase.max_seq_length)
    if check_records and os.path.exists(sidecar_path):
        counts = records_per_file(read_records_sidecar(sidecar_path))
        files = sorted(name for name in counts if name.startswith("shard_"))
        try:
            check_rank_shares(files, counts, ranks, phase.batch_size_per_gpu)
        except WorkflowError as error:
            raise ConfigError(
                f"{phase.name}: batch_size_per_gpu {phase.batch_size_per_gpu} x {ranks} ranks does not fit the "
                f"records in {sidecar_path}: {error}"
            ) from None
    return ranks
