"""Who am I among the training processes, and how gradients are combined.

One process per GPU. ``Replica`` describes this process (rank, number of
ranks, local rank for GPU pinning) and how it combines gradients with the
others. A single process needs nothing; the data-parallel engines (Horovod,
TensorFlow's multi-worker strategy) implement the same small interface.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Replica:
    """This process's place in the job. ``size == 1`` is plain single-process training."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    engine: str = "none"

    @property
    def is_chief(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and TensorBoard events."""
        return self.rank == 0

    def allreduce_gradients(self, gradients):
        """Average gradients over ranks (identity for one process)."""
        return gradients

    def broadcast_variables(self, variables) -> None:
        """Make every rank start from rank 0's values (nothing to do for one process)."""

    def all_ranks_agree(self, flag: bool) -> bool:
        """True when the flag is set on any rank (a stop request reaches all of them)."""
        return flag


def pin_local_gpu(local_rank: int) -> None:
    """One GPU per process: make only this rank's GPU visible to TensorFlow.

    SLURM's gres gives each task all GPUs of the node (CUDA_VISIBLE_DEVICES
    =0,1,2,3), so each rank keeps the one at its local rank.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return
    gpu = gpus[local_rank % len(gpus)]
    tf.config.set_visible_devices(gpu, "GPU")
    tf.config.experimental.set_memory_growth(gpu, True)


def single_process() -> Replica:
    return Replica(rank=0, size=1, local_rank=int(os.environ.get("SLURM_LOCALID", 0)), engine="none")


def create_replica(engine: str = "auto") -> Replica:
    """The Replica for this process; only single-process training exists so far."""
    if engine not in ("auto", "none"):
        from .errors import ConfigError

        raise ConfigError(f"training.distribution is {engine!r}; this version supports 'auto' and 'none'")
    return single_process()
