"""TensorFlow's MultiWorkerMirroredStrategy as the data-parallel engine.

The strategy is used as a collective engine only: the cluster (one worker per
rank, port ``base + rank`` on the rank's node) is built from SLURM's
environment, or read from ``TF_CONFIG`` outside SLURM. Variables stay plain
``tf.Variable``s that every rank updates identically from the averaged
gradients (as under Horovod); gradients are averaged by one batched
``ReplicaContext.all_reduce`` inside ``strategy.run``.
"""

from __future__ import annotations

import logging

from .errors import ConfigError
from .replica import Replica, compress, decompress
from .topology import Topology, base_port, node_address

log = logging.getLogger(__name__)


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
            gradients = decompress(self._all_reduce("sum", compress(gradients, self.size)), gradients)
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
