"""Horovod as the data-parallel engine, with its Gloo rendezvous set up from SLURM.

Horovod (Gloo controller) is built into the TF 2.15 environment by
``tools/build_horovod.sh``. Under ``srun`` the program sets up Gloo's
rendezvous itself from SLURM's environment: rank 0 serves Horovod's HTTP
rendezvous store on the first node of the step, every rank gets the
``HOROVOD_*`` variables ``horovodrun`` would have given it. Outside SLURM,
``horovodrun --gloo -np N`` starts the ranks with those variables set.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from .errors import ConfigError
from .replica import Replica, compress, decompress
from .topology import PORT_ENV, Topology, base_port, node_address

log = logging.getLogger(__name__)

# How long ranks wait for each other at start-up (Python and TensorFlow
# imports on a busy shared file system can take minutes).
STARTUP_TIMEOUT_SECONDS = 600


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
            summed = hvd.grouped_allreduce(compress(gradients, self.size), op=hvd.Sum, name="gradients_fp16")
            gradients = decompress(summed, gradients)
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
