"""Where the ranks are: which launcher started this process, and how to reach the others.

srun (SLURM's environment: node list, tasks per node, block distribution),
horovodrun (``HOROVOD_*``), ``TF_CONFIG``, mpirun, or nobody (one process).
The engines build their rendezvous or cluster from the ``Topology``, on ports
every rank derives from the job alone (``base_port``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from dataclasses import dataclass, field

from .errors import ConfigError

PORT_ENV = "BERT_PRETRAINING_PORT"


def expand_hostlist(hostlist: str) -> list[str]:
    """SLURM's compressed node list to names: ``gpu[01-02,05],login`` -> gpu01, gpu02, gpu05, login.

    Several bracket groups in one name (``r[1-2]n[1-2]``) expand in order, as
    ``scontrol show hostnames`` does; zero padding is kept.
    """
    names: list[str] = []
    for item in _split_outside_brackets(hostlist.strip()):
        if item:
            names.extend(_expand_one(item))
    return names


def _split_outside_brackets(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"malformed SLURM node list {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise ConfigError(f"malformed SLURM node list {text!r}")
    parts.append("".join(current))
    return parts


def _expand_one(item: str) -> list[str]:
    match = re.search(r"\[([^\]]*)\]", item)
    if match is None:
        return [item]
    prefix, suffix = item[: match.start()], item[match.end():]
    values = []
    for piece in match.group(1).split(","):
        if "-" in piece:
            low, high = piece.split("-", 1)
            if not (low.isdigit() and high.isdigit()) or int(high) < int(low):
                raise ConfigError(f"malformed range {piece!r} in SLURM node list {item!r}")
            width = len(low)
            values.extend(str(number).zfill(width) for number in range(int(low), int(high) + 1))
        elif piece.isdigit():
            values.append(piece)
        else:
            raise ConfigError(f"malformed entry {piece!r} in SLURM node list {item!r}")
    return [name for value in values for name in _expand_one(prefix + value + suffix)]


def expand_tasks_per_node(text: str) -> list[int]:
    """SLURM's ``SLURM_TASKS_PER_NODE`` (``4(x2),3``) to one count per node ([4, 4, 3])."""
    counts: list[int] = []
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", item)
        if match is None:
            raise ConfigError(f"malformed SLURM tasks-per-node {text!r}")
        counts.extend([int(match.group(1))] * int(match.group(2) or 1))
    return counts


@dataclass
class Topology:
    """The ranks of this job, as the launcher describes them."""

    launcher: str  # "single", "slurm", "horovodrun", "tf_config", "mpi"
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    cross_rank: int = 0
    cross_size: int = 1
    node_name: str = "localhost"
    nodes: list = field(default_factory=list)  # SLURM: node names in step order
    tasks_per_node: list = field(default_factory=list)  # SLURM: tasks on each node


def _int_env(env, name, default=None):
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def slurm_topology(env) -> Topology:
    """This task's place in an srun job step (block distribution, SLURM's default).

    SLURM gives the step's node list and tasks per node; with block
    distribution rank r runs on the node whose cumulative task count first
    exceeds r. That is checked against the task's own SLURMD_NODENAME and
    SLURM_LOCALID, so another distribution is refused instead of producing a
    wrong cluster.
    """
    rank = _int_env(env, "SLURM_PROCID", 0)
    size = _int_env(env, "SLURM_STEP_NUM_TASKS") or _int_env(env, "SLURM_NTASKS", 1)
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    tasks = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE")
    if not nodelist or not tasks:
        raise ConfigError(
            f"SLURM task {rank} of {size} without SLURM_STEP_NODELIST/SLURM_STEP_TASKS_PER_NODE; "
            "expected the ranks to be started by srun"
        )
    nodes = expand_hostlist(nodelist)
    counts = expand_tasks_per_node(tasks)
    if len(counts) != len(nodes) or sum(counts) != size:
        raise ConfigError(
            f"SLURM step of {size} tasks on nodes {nodes} with tasks per node {tasks!r} do not add up"
        )
    starts = [sum(counts[:index]) for index in range(len(counts))]
    node_index = max(index for index, start in enumerate(starts) if start <= rank)
    local_rank = rank - starts[node_index]
    own_node = env.get("SLURMD_NODENAME")
    own_local = _int_env(env, "SLURM_LOCALID")
    if (own_node is not None and own_node != nodes[node_index]) or (
        own_local is not None and own_local != local_rank
    ):
        raise ConfigError(
            f"rank {rank} runs on {own_node} as local task {own_local}, but block distribution over "
            f"{nodes} would put it on {nodes[node_index]} as local task {local_rank}; start the ranks "
            "with srun's default --distribution=block"
        )
    local_size = counts[node_index]
    # Cross communicator of Horovod: the ranks with my local rank, one per node.
    holders = [index for index, count in enumerate(counts) if count > local_rank]
    return Topology(
        launcher="slurm", rank=rank, size=size, local_rank=local_rank, local_size=local_size,
        cross_rank=holders.index(node_index), cross_size=len(holders), node_name=nodes[node_index],
        nodes=nodes, tasks_per_node=counts,
    )


def _tf_config_workers(config: dict) -> list[tuple[str, int]]:
    """Tasks of a TF_CONFIG cluster in MWMS's order: the chief first, then the workers."""
    cluster = config.get("cluster", {})
    return [("chief", index) for index in range(len(cluster.get("chief", [])))] + [
        ("worker", index) for index in range(len(cluster.get("worker", [])))
    ]


def detect_topology(env=None) -> Topology:
    """How this process was started: by horovodrun, with TF_CONFIG, by srun, by mpirun, or alone."""
    env = os.environ if env is None else env
    if env.get("HOROVOD_RANK") is not None and env.get("HOROVOD_SIZE") is not None:
        return Topology(
            launcher="horovodrun", rank=_int_env(env, "HOROVOD_RANK"), size=_int_env(env, "HOROVOD_SIZE"),
            local_rank=_int_env(env, "HOROVOD_LOCAL_RANK", 0), local_size=_int_env(env, "HOROVOD_LOCAL_SIZE", 1),
            cross_rank=_int_env(env, "HOROVOD_CROSS_RANK", 0), cross_size=_int_env(env, "HOROVOD_CROSS_SIZE", 1),
            node_name=env.get("HOROVOD_HOSTNAME", "localhost"),
        )
    if env.get("TF_CONFIG"):
        try:
            config = json.loads(env["TF_CONFIG"])
        except ValueError as error:
            raise ConfigError(f"TF_CONFIG is not JSON: {error}") from None
        tasks = _tf_config_workers(config)
        task = config.get("task", {})
        me = (task.get("type"), int(task.get("index", 0)))
        if tasks and me not in tasks:
            raise ConfigError(f"TF_CONFIG task {me} is not a chief or worker of its cluster")
        return Topology(
            launcher="tf_config", rank=tasks.index(me) if tasks else 0, size=max(len(tasks), 1),
            local_rank=_int_env(env, "SLURM_LOCALID", 0),
        )
    slurm_size = _int_env(env, "SLURM_STEP_NUM_TASKS") or _int_env(env, "SLURM_NTASKS")
    if slurm_size is not None and env.get("SLURM_PROCID") is not None:
        if slurm_size > 1:
            return slurm_topology(env)
        return Topology(launcher="single", local_rank=_int_env(env, "SLURM_LOCALID", 0))
    mpi_size = _int_env(env, "OMPI_COMM_WORLD_SIZE") or _int_env(env, "PMI_SIZE")
    if mpi_size is not None and mpi_size > 1:
        rank = _int_env(env, "OMPI_COMM_WORLD_RANK") or _int_env(env, "PMI_RANK", 0)
        return Topology(
            launcher="mpi", rank=rank, size=mpi_size, local_rank=_int_env(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0)
        )
    return Topology(launcher="single")


def detect_rank(env=None) -> int:
    """This process's rank from the launcher's environment (0 when unknown), for log prefixes."""
    try:
        return detect_topology(env).rank
    except ConfigError:
        return 0


def base_port(env=None) -> int:
    """The first port of this job step's rendezvous (Horovod) or workers (base + rank, multiworker).

    ``BERT_PRETRAINING_PORT`` sets it; otherwise it is derived from the SLURM
    job and step ids, so every rank computes the same port without talking,
    and two steps or jobs sharing a node rarely collide. The range stays below
    Linux's ephemeral ports (32768 and up).
    """
    env = os.environ if env is None else env
    explicit = _int_env(env, PORT_ENV)
    if explicit is not None:
        return explicit
    job = _int_env(env, "SLURM_JOB_ID", 0)
    step = _int_env(env, "SLURM_STEP_ID", 0)
    return 15000 + (job * 64 + step) % 10000


def node_address(name: str) -> str:
    """An address other nodes can reach ``name`` at: its DNS name, else SLURM's NodeAddr.

    On a real cluster node names resolve. A test cluster may define nodes
    whose names do not (``NodeName=node[1-2] NodeAddr=127.0.0.1``): then
    ``scontrol show node`` gives the address.
    """
    try:
        socket.getaddrinfo(name, None)
        return name
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["scontrol", "show", "node", "-o", name], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise ConfigError(f"node {name} does not resolve and scontrol cannot tell its address: {error}") from None
    match = re.search(r"\bNodeAddr=(\S+)", out)
    if match is None:
        raise ConfigError(f"node {name} does not resolve and `scontrol show node {name}` gives no NodeAddr")
    return match.group(1)
