"""Who am I among the training processes, and how gradients are combined.

One process per GPU. ``Replica`` describes this process (rank, number of
ranks, local rank for GPU pinning) and how it combines gradients with the
others. A single process needs nothing; the two data-parallel engines
implement the same small interface:

* ``horovod``: Horovod (Gloo controller, built into the TF 2.15 environment
  by ``tools/build_horovod.sh``). Under ``srun`` the program sets up Gloo's
  rendezvous itself from SLURM's environment: rank 0 serves Horovod's HTTP
  rendezvous store on the first node of the step, every rank gets the
  ``HOROVOD_*`` variables ``horovodrun`` would have given it. Outside SLURM,
  ``horovodrun --gloo -np N`` starts the ranks with those variables set.
* ``multiworker``: TensorFlow's own ``MultiWorkerMirroredStrategy`` used as
  a collective engine: the cluster (one worker per rank, port ``base + rank``
  on the rank's node) is built from SLURM's environment, or read from
  ``TF_CONFIG`` outside SLURM. Variables stay plain ``tf.Variable``s that
  every rank updates identically from the averaged gradients (as under
  Horovod); gradients are averaged by one batched
  ``ReplicaContext.all_reduce`` inside ``strategy.run``.

Both engines average gradients between the two XLA-compiled halves of the
step (see ``training.make_train_step``), broadcast the training state from
rank 0 after a restore, and turn a stop request on any rank into a decision
all ranks take at the same step (``all_ranks_agree``).

How the engine is chosen (``create_replica``): one process (no launcher, or
a launcher with one task) needs no engine. With more ranks, ``auto`` takes
Horovod when it is importable, else the multi-worker strategy; ``none`` is
refused, so that N independent trainers never write the same checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from .errors import ConfigError
from .settings import setting_schema

log = logging.getLogger(__name__)

ENGINES = ("auto", "horovod", "multiworker", "none")

# Collectives that wait longer than this fail instead of hanging until the
# job's time limit. It must cover the slowest rank's first-step XLA compile
# and rank 0's checkpoint writes (the others wait for it at the next
# collective). A rank that dies is noticed much sooner: by srun
# --kill-on-bad-exit, by Gloo's broken connections, by TensorFlow's
# coordination-service heartbeats.
DEFAULT_COLLECTIVE_TIMEOUT_SECONDS = setting_schema("training", "collective_timeout_seconds")["default"]
# How long ranks wait for each other at start-up (Python and TensorFlow
# imports on a busy shared file system can take minutes).
STARTUP_TIMEOUT_SECONDS = 600
PORT_ENV = "BERT_PRETRAINING_PORT"


# --------------------------------------------------------------------------
# The interface, and the single process
# --------------------------------------------------------------------------


@dataclass
class Replica:
    """This process's place in the job. ``size == 1`` is plain single-process training."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    engine: str = "none"
    fp16_allreduce: bool = False

    @property
    def is_chief(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and TensorBoard events."""
        return self.rank == 0

    def allreduce_gradients(self, gradients, metrics=None):
        """Average gradients (and optionally a dict of float32 scalar metrics) over ranks.

        ``None`` entries (variables without a gradient) stay None. Returns the
        gradient list, or ``(gradients, metrics)`` when metrics are given.
        Identity for one process.
        """
        if self.size == 1:
            return gradients if metrics is None else (gradients, metrics)
        present = [index for index, grad in enumerate(gradients) if grad is not None]
        names = sorted(metrics) if metrics else []
        reduced, reduced_metrics = self._mean(
            [gradients[index] for index in present], [metrics[name] for name in names]
        )
        out = list(gradients)
        for index, value in zip(present, reduced):
            out[index] = value
        if metrics is None:
            return out
        return out, dict(zip(names, reduced_metrics))

    def broadcast_variables(self, variables) -> None:
        """Make every rank start from rank 0's values (nothing to do for one process)."""

    def all_ranks_agree(self, flag: bool) -> bool:
        """True when the flag is set on any rank (a stop request reaches all of them)."""
        return flag

    def barrier(self) -> None:
        """Wait until every rank gets here (rank 0's final checkpoint is written)."""
        self.all_ranks_agree(False)

    def _mean(self, gradients, metrics):
        raise NotImplementedError


def single_process() -> Replica:
    return Replica(rank=0, size=1, local_rank=int(os.environ.get("SLURM_LOCALID", 0)), engine="none")


def pin_local_gpu(local_rank: int) -> None:
    """One GPU per process: make only this rank's GPU visible to TensorFlow.

    SLURM's gres gives each task all GPUs of the node (CUDA_VISIBLE_DEVICES
    =0,1,2,3), so each rank keeps the one at its local rank. Must run before
    TensorFlow initialises its devices (before the multi-worker strategy).
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return
    gpu = gpus[local_rank % len(gpus)]
    tf.config.set_visible_devices(gpu, "GPU")
    tf.config.experimental.set_memory_growth(gpu, True)


def _compress(tensors, size):
    """fp16 allreduce: divide by the rank count in float32, then send float16.

    Dividing first means the float16 sum is already the mean, so summing
    cannot overflow where the mean would not. Gradients are still multiplied
    by the loss scale here, which keeps small ones out of float16's underflow.
    """
    import tensorflow as tf

    return [tf.cast(tensor * (1.0 / size), tf.float16) for tensor in tensors]


def _decompress(tensors, like):
    import tensorflow as tf

    return [tf.cast(tensor, original.dtype) for tensor, original in zip(tensors, like)]


# --------------------------------------------------------------------------
# Where the ranks are: SLURM, horovodrun, TF_CONFIG
# --------------------------------------------------------------------------


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


def wait_for_port(address: str, port: int, timeout: float) -> None:
    """Block until something listens at address:port (rank 0's rendezvous server)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=5):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"rank 0's rendezvous server at {address}:{port} did not come up within {timeout:.0f} s "
                    f"({error}); did rank 0 start?"
                ) from None
            time.sleep(0.5)


# --------------------------------------------------------------------------
# Horovod
# --------------------------------------------------------------------------


def horovod_importable() -> bool:
    try:
        import horovod.tensorflow  # noqa: F401
    except Exception:  # ImportError, or a Horovod built for another TensorFlow
        return False
    return True


def _start_horovod_rendezvous(topology: Topology, port: int):
    """Rank 0: serve Horovod's Gloo rendezvous store (what horovodrun's launcher does).

    The server must know each Gloo scope's size (global, local_<node>,
    cross_<local rank>) to clear it once everyone has connected.
    """
    from horovod.runner.common.util.hosts import SlotInfo
    from horovod.runner.http.http_server import RendezvousHandler, RendezvousHTTPServer

    plan = []
    rank = 0
    for node_index, (node, count) in enumerate(zip(topology.nodes, topology.tasks_per_node)):
        for local_rank in range(count):
            holders = [index for index, c in enumerate(topology.tasks_per_node) if c > local_rank]
            plan.append(
                SlotInfo(
                    hostname=node, rank=rank, local_rank=local_rank, cross_rank=holders.index(node_index),
                    size=topology.size, local_size=count, cross_size=len(holders),
                )
            )
            rank += 1
    try:
        server = RendezvousHTTPServer(("", port), RendezvousHandler, 0)
    except OSError as error:
        raise ConfigError(
            f"rank 0 cannot serve Horovod's rendezvous on port {port}: {error}; set {PORT_ENV} to a free port"
        ) from None
    server.init(plan)
    thread = threading.Thread(target=server.serve_forever, name="horovod-rendezvous", daemon=True)
    thread.start()
    return server


def horovod_environment_from_slurm(topology: Topology, env=None) -> dict:
    """The variables horovodrun --gloo would give this rank, from an srun step."""
    env = os.environ if env is None else env
    port = base_port(env)
    address = env.get("HOROVOD_GLOO_RENDEZVOUS_ADDR") or node_address(topology.nodes[0])
    return {
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": address,
        "HOROVOD_GLOO_RENDEZVOUS_PORT": str(port),
        "HOROVOD_CONTROLLER": "gloo",
        "HOROVOD_CPU_OPERATIONS": "gloo",
        # Gloo scopes its per-node communicator by this name: the SLURM node
        # name, so two "nodes" of a test cluster on one host stay apart.
        "HOROVOD_HOSTNAME": topology.node_name,
        "HOROVOD_RANK": str(topology.rank),
        "HOROVOD_SIZE": str(topology.size),
        "HOROVOD_LOCAL_RANK": str(topology.local_rank),
        "HOROVOD_LOCAL_SIZE": str(topology.local_size),
        "HOROVOD_CROSS_RANK": str(topology.cross_rank),
        "HOROVOD_CROSS_SIZE": str(topology.cross_size),
    }


class HorovodReplica(Replica):
    """Gradients averaged by Horovod's grouped allreduce (one fused operation per step)."""

    def __init__(self, hvd, fp16_allreduce: bool):
        import tensorflow as tf

        super().__init__(
            rank=hvd.rank(), size=hvd.size(), local_rank=hvd.local_rank(), engine="horovod",
            fp16_allreduce=fp16_allreduce,
        )
        self._hvd = hvd
        self._tf = tf
        self._mean_fn = tf.function(self._mean_graph)

    def _mean_graph(self, gradients, metrics):
        hvd = self._hvd
        if self.fp16_allreduce and gradients:
            summed = hvd.grouped_allreduce(_compress(gradients, self.size), op=hvd.Sum, name="gradients_fp16")
            gradients = _decompress(summed, gradients)
        elif gradients:
            gradients = hvd.grouped_allreduce(list(gradients), op=hvd.Average, name="gradients")
        if metrics:
            metrics = hvd.grouped_allreduce(list(metrics), op=hvd.Average, name="metrics")
        return list(gradients), list(metrics)

    def _mean(self, gradients, metrics):
        return self._mean_fn(gradients, metrics)

    def broadcast_variables(self, variables) -> None:
        self._hvd.broadcast_variables(list(variables), root_rank=0)

    def all_ranks_agree(self, flag: bool) -> bool:
        tf = self._tf
        total = self._hvd.allreduce(tf.constant(int(bool(flag)), tf.int32), op=self._hvd.Sum, name="agree")
        return int(total.numpy()) > 0


def create_horovod_replica(topology: Topology, *, fp16_allreduce: bool, timeout_seconds: float) -> Replica:
    if not horovod_importable():
        raise ConfigError(
            "training.distribution is 'horovod' but horovod.tensorflow cannot be imported; build it with "
            "tools/build_horovod.sh (TensorFlow 2.15 environment) or use 'multiworker'"
        )
    import horovod.tensorflow as hvd

    if topology.launcher == "tf_config":
        raise ConfigError("TF_CONFIG describes a multi-worker cluster; use --distribution=multiworker with it")
    # Fail a hung collective instead of waiting until the time limit; a dead
    # peer breaks Gloo's TCP connections at once.
    os.environ.setdefault("HOROVOD_STALL_CHECK_TIME_SECONDS", "120")
    if timeout_seconds:
        os.environ.setdefault("HOROVOD_STALL_SHUTDOWN_TIME_SECONDS", str(int(timeout_seconds)))
    if topology.launcher == "slurm":
        variables = horovod_environment_from_slurm(topology)
        # Gloo's own timeout covers the rendezvous and each Gloo operation;
        # Horovod's background thread keeps talking while rank 0 saves.
        os.environ.setdefault("HOROVOD_GLOO_TIMEOUT_SECONDS", str(STARTUP_TIMEOUT_SECONDS))
        os.environ.update(variables)
        address, port = variables["HOROVOD_GLOO_RENDEZVOUS_ADDR"], int(variables["HOROVOD_GLOO_RENDEZVOUS_PORT"])
        if topology.rank == 0:
            _start_horovod_rendezvous(topology, port)
        else:
            # Horovod's HTTP store gives up after three tries 0.5 s apart.
            wait_for_port(address, port, STARTUP_TIMEOUT_SECONDS)
        log.info("Horovod rendezvous at %s:%d (rank %d of %d)", address, port, topology.rank, topology.size)
    hvd.init()
    if hvd.size() != topology.size:
        raise ConfigError(f"Horovod sees {hvd.size()} ranks but the launcher started {topology.size}")
    return HorovodReplica(hvd, fp16_allreduce)


# --------------------------------------------------------------------------
# TensorFlow's MultiWorkerMirroredStrategy
# --------------------------------------------------------------------------


def multiworker_cluster_from_slurm(topology: Topology, env=None) -> dict:
    """TF_CONFIG-style cluster: worker i = rank i at <its node's address>:<base port + i>."""
    port = base_port(env)
    addresses = {node: node_address(node) for node in topology.nodes}
    workers = []
    for node, count in zip(topology.nodes, topology.tasks_per_node):
        for _ in range(count):
            workers.append(f"{addresses[node]}:{port + len(workers)}")
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": topology.rank}}


class MultiWorkerReplica(Replica):
    """Collectives of ``tf.distribute.MultiWorkerMirroredStrategy`` (RING on CPU, NCCL on GPU).

    The strategy provides the cluster, the collective ops and their failure
    detection; the model's variables are not strategy variables, so the
    step's compiled halves stay ordinary (XLA) functions and one code path
    runs on TensorFlow 2.15 and 2.21.
    """

    def __init__(self, strategy, rank: int, size: int, local_rank: int, fp16_allreduce: bool):
        import tensorflow as tf

        super().__init__(rank=rank, size=size, local_rank=local_rank, engine="multiworker",
                         fp16_allreduce=fp16_allreduce)
        self.strategy = strategy
        self._tf = tf
        self._reduce_fn = tf.function(self._reduce_graph)
        self._mean_fn = tf.function(self._mean_graph)

    def _all_reduce(self, op, tensors):
        """One batched all-reduce in replica context; ``op`` is "sum" or "mean"."""
        tf = self._tf

        def replica_fn(values):
            # Tensors made inside the replica function carry the replica's
            # device, which the collective needs as its destination.
            values = [tf.identity(value) for value in values]
            context = tf.distribute.get_replica_context()
            out = [None] * len(values)
            # One batched (packed) all-reduce per dtype: packing needs one dtype.
            for dtype in sorted({value.dtype for value in values}, key=lambda d: d.name):
                indices = [index for index, value in enumerate(values) if value.dtype == dtype]
                reduced = context.all_reduce(op, [values[index] for index in indices])
                for index, value in zip(indices, reduced):
                    out[index] = value
            return out

        result = self.strategy.run(replica_fn, args=(list(tensors),))
        return [self.strategy.experimental_local_results(value)[0] for value in result]

    def _reduce_graph(self, op, tensors):
        return self._all_reduce(op, tensors)

    def _mean_graph(self, gradients, metrics):
        if self.fp16_allreduce and gradients:
            gradients = _decompress(self._all_reduce("sum", _compress(gradients, self.size)), gradients)
            if metrics:
                metrics = self._all_reduce("mean", metrics)
        elif gradients or metrics:
            reduced = self._all_reduce("mean", list(gradients) + list(metrics))
            gradients, metrics = reduced[: len(gradients)], reduced[len(gradients):]
        return list(gradients), list(metrics)

    def _mean(self, gradients, metrics):
        return self._mean_fn(gradients, metrics)

    def broadcast_variables(self, variables) -> None:
        """Rank 0's values to everyone: a sum where the other ranks contribute zeros (exact)."""
        tf = self._tf
        variables = list(variables)
        contributions = [
            variable.read_value() if self.rank == 0 else tf.zeros_like(variable) for variable in variables
        ]
        for variable, value in zip(variables, self._reduce_fn("sum", contributions)):
            variable.assign(value)

    def all_ranks_agree(self, flag: bool) -> bool:
        tf = self._tf
        (total,) = self._reduce_fn("sum", [tf.constant(int(bool(flag)), tf.int32)])
        return int(total.numpy()) > 0


def create_multiworker_replica(topology: Topology, *, fp16_allreduce: bool, timeout_seconds: float) -> Replica:
    import tensorflow as tf

    if topology.launcher == "slurm":
        config = multiworker_cluster_from_slurm(topology)
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(config["cluster"]), task_type="worker", task_id=topology.rank, rpc_layer="grpc",
        )
        log.info("multi-worker cluster: %s (rank %d)", ", ".join(config["cluster"]["worker"]), topology.rank)
    elif topology.launcher == "tf_config":
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    else:
        raise ConfigError(
            f"--distribution=multiworker needs srun (SLURM) or TF_CONFIG to find the other ranks; "
            f"this process was started by {topology.launcher}"
        )
    gpus = tf.config.list_physical_devices("GPU")
    implementation = (
        tf.distribute.experimental.CommunicationImplementation.NCCL
        if gpus else tf.distribute.experimental.CommunicationImplementation.RING
    )
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=implementation, timeout_seconds=float(timeout_seconds) if timeout_seconds else None,
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver, communication_options=options)
    if strategy.num_replicas_in_sync != topology.size:
        raise ConfigError(
            f"the multi-worker strategy has {strategy.num_replicas_in_sync} replicas for {topology.size} ranks; "
            "expected one GPU (or the CPU) per rank"
        )
    return MultiWorkerReplica(strategy, topology.rank, topology.size, topology.local_rank, fp16_allreduce)


# --------------------------------------------------------------------------
# Choosing the engine
# --------------------------------------------------------------------------


def choose_engine(engine: str, topology: Topology, horovod_available=None) -> str:
    """The engine to run with, or a ConfigError explaining why none can."""
    if engine not in ENGINES:
        raise ConfigError(f"training.distribution is {engine!r}; expected one of {', '.join(ENGINES)}")
    if topology.size <= 1:
        return "none"
    if horovod_available is None:
        horovod_available = horovod_importable() if engine in ("auto", "horovod") else False
    if engine == "none":
        raise ConfigError(
            f"{topology.size} ranks were started ({topology.launcher}) but training.distribution is 'none'; "
            "refusing to run independent trainers that would overwrite each other's checkpoints"
        )
    if engine == "auto":
        if topology.launcher in ("horovodrun", "mpi"):
            engine = "horovod"
        elif topology.launcher == "tf_config":
            engine = "multiworker"
        else:
            engine = "horovod" if horovod_available else "multiworker"
    if engine == "horovod" and not horovod_available:
        raise ConfigError(
            f"{topology.size} ranks need Horovod ({topology.launcher} started them) but horovod.tensorflow "
            "cannot be imported; build it with tools/build_horovod.sh or run under srun/TF_CONFIG with "
            "training.distribution 'multiworker'"
        )
    if engine == "multiworker" and topology.launcher not in ("slurm", "tf_config"):
        raise ConfigError(
            f"training.distribution 'multiworker' needs srun or TF_CONFIG; {topology.launcher} started these "
            f"{topology.size} ranks"
        )
    return engine


def create_replica(
    engine: str = "auto",
    *,
    fp16_allreduce: bool = False,
    timeout_seconds: float = DEFAULT_COLLECTIVE_TIMEOUT_SECONDS,
    env=None,
) -> Replica:
    """Join the other ranks (if any) and return this process's Replica; pins its GPU.

    Call it before TensorFlow initialises its devices: the multi-worker
    strategy configures the runtime's collectives at start-up.
    """
    topology = detect_topology(env)
    chosen = choose_engine(engine, topology)
    if chosen == "none":
        pin_local_gpu(topology.local_rank)
        return Replica(rank=0, size=1, local_rank=topology.local_rank, engine="none")
    if chosen == "horovod":
        replica = create_horovod_replica(topology, fp16_allreduce=fp16_allreduce, timeout_seconds=timeout_seconds)
        pin_local_gpu(replica.local_rank)
    else:
        pin_local_gpu(topology.local_rank)
        replica = create_multiworker_replica(
            topology, fp16_allreduce=fp16_allreduce, timeout_seconds=timeout_seconds
        )
    log.info(
        "rank %d of %d (local rank %d) on %s, engine %s%s", replica.rank, replica.size, replica.local_rank,
        socket.gethostname(), replica.engine, ", fp16 allreduce" if fp16_allreduce else "",
    )
    return replica
