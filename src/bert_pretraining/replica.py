"""This process's place among the training processes, and how gradients are combined.

One process per GPU. ``Replica`` describes this process (rank, number of
ranks, local rank for GPU pinning) and how it combines gradients with the
others. A single process needs nothing; the data-parallel engines
(horovod_replica, multiworker_replica) implement the same small interface,
and distribution.create_replica picks one.
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


def compress(tensors, size):
    """fp16 allreduce: divide by the rank count in float32, then send float16.

    Dividing first means the float16 sum is already the mean, so summing
    cannot overflow where the mean would not. Gradients are still multiplied
    by the loss scale here, which keeps small ones out of float16's underflow.
    """
    import tensorflow as tf

    return [tf.cast(tensor * (1.0 / size), tf.float16) for tensor in tensors]


def decompress(tensors, like):
    import tensorflow as tf

    return [tf.cast(tensor, original.dtype) for tensor, original in zip(tensors, like)]
