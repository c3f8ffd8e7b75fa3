"""Which data-parallel engine runs (training.distribution), and joining the other ranks.

A single process needs no engine; the two data-parallel engines implement
the ``Replica`` interface (replica.py):

* ``horovod`` (horovod_replica.py): Horovod's grouped allreduce over Gloo;
  under ``srun`` the program serves Gloo's rendezvous itself.
* ``multiworker`` (multiworker_replica.py): TensorFlow's own
  ``MultiWorkerMirroredStrategy`` used as a collective engine.

Both engines average gradients between the two XLA-compiled halves of the
step (see ``training.make_train_step``), broadcast the training state from
rank 0 after a restore, and turn a stop request on any rank into a decision
all ranks take at the same step (``all_ranks_agree``).

How the engine is chosen (``choose_engine``): one process (no launcher, or
a launcher with one task) needs no engine. With more ranks, ``auto`` takes
Horovod when it is importable, else the multi-worker strategy; ``none`` is
refused, so that N independent trainers never write the same checkpoints.
Where the ranks are (srun, horovodrun, TF_CONFIG) is topology.py's business.
"""

from __future__ import annotations

import logging
import socket

from .errors import ConfigError
from .horovod_replica import create_horovod_replica, horovod_importable
from .multiworker_replica import create_multiworker_replica
from .replica import Replica
from .schema import schema_choices, schema_default
from .topology import Topology, detect_topology

log = logging.getLogger(__name__)

ENGINES = schema_choices("training", "distribution")

# Collectives that wait longer than this fail instead of hanging until the
# job's time limit. It must cover the slowest rank's first-step XLA compile
# and rank 0's checkpoint writes (the others wait for it at the next
# collective). A rank that dies is noticed much sooner: by srun
# --kill-on-bad-exit, by Gloo's broken connections, by TensorFlow's
# coordination-service heartbeats.
DEFAULT_COLLECTIVE_TIMEOUT_SECONDS = schema_default("training", "collective_timeout_seconds")


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
