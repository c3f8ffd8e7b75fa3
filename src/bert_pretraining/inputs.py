"""Records -> batches, resumable at an exact batch.

Every rank reads its own record files (file ``i`` goes to rank ``i % ranks``,
before any shuffling), in epochs. Epoch ``e`` of a rank is a pure function of
(seed, rank, e): the file order and the record shuffle are seeded with them.
So the input position is one number, the batches a rank has consumed in this
phase, and resuming rebuilds the same epoch and skips to that batch (the skip
reads raw records without parsing them). The reference implementations restart
the input pipeline from the beginning after a restart; this one continues
with exactly the next batch.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

from .errors import RecordsError
from .files import expand_patterns
from .record_shares import batches_per_epoch, files_for_rank, rank_records
from .records_sidecar import damaged_records_message
from .tfrecords import feature_spec, scan_records

SHUFFLE_BUFFER = 10000


def parse_spec(max_seq_length: int, max_predictions_per_seq: int) -> dict:
    """Google's run_pretraining.py feature spec, as tf.io.FixedLenFeature."""
    dtypes = {"int64": tf.int64, "float32": tf.float32}
    return {
        name: tf.io.FixedLenFeature([length], dtypes[dtype])
        for name, (length, dtype) in feature_spec(max_seq_length, max_predictions_per_seq).items()
    }


def expand_input_files(input_file: str, flag: str = "--input_file") -> list[str]:
    """Google's --input_file: comma-separated paths or globs of record files, each must match."""
    return expand_patterns(input_file, flag, what="record files (comma-separated paths or globs)", error=RecordsError)


@contextlib.contextmanager
def naming_damaged_records(files: list[str]):
    """Around reading ``files`` with tf.data: its DataLossError becomes a RecordsError naming the damaged file.

    TensorFlow says "truncated record at <offset>" without the file; the files
    are scanned with the package's reader to name it (an error path only). A
    DataLossError that no record file explains (a checkpoint's) is re-raised.
    """
    try:
        yield
    except tf.errors.DataLossError as error:
        problems = []
        for path in dict.fromkeys(files):
            try:
                scan_records(path)
            except RecordsError as damage:
                problems.append(str(damage))
        if not problems:
            raise
        raise RecordsError(damaged_records_message(problems)) from error


def pretraining_dataset(
    files: list[str],
    records_per_file: dict[str, int],
    *,
    batch_size: int,
    max_seq_length: int,
    max_predictions_per_seq: int,
    seed: int,
    start_batch: int = 0,
    rank: int = 0,
    num_ranks: int = 1,
    shuffle_buffer: int = SHUFFLE_BUFFER,
) -> tf.data.Dataset:
    """Endless parsed batches for one rank, starting at batch ``start_batch``.

    ``records_per_file`` (from the records sidecar) gives the epoch length
    without reading the files.
    """
    my_files = files_for_rank(files, rank, num_ranks)
    epoch_batches = batches_per_epoch(
        rank_records(files, records_per_file, rank, num_ranks), batch_size,
        f"rank {rank}'s share of the records ({len(my_files)} files)",
    )
    first_epoch, offset = divmod(int(start_batch), epoch_batches)
    files_tensor = tf.constant(my_files)
    spec = parse_spec(max_seq_length, max_predictions_per_seq)

    def epoch(epoch_index):
        epoch_seed = tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(rank, tf.int64) * 7919 + epoch_index
        order = tf.random.experimental.stateless_shuffle(
            files_tensor, seed=tf.stack([tf.cast(seed, tf.int64), epoch_seed])
        )
        records = tf.data.Dataset.from_tensor_slices(order).interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(4, len(my_files)),
            block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        records = records.shuffle(shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=False)
        return records.batch(batch_size, drop_remainder=True).take(epoch_batches)

    first = epoch(tf.constant(first_epoch, tf.int64)).skip(offset)
    rest = tf.data.Dataset.range(first_epoch + 1, 2**62).flat_map(epoch)
    batches = first.concatenate(rest)

    def parse(serialized):
        features = tf.io.parse_example(serialized, spec)
        # int32 as Google's reader does: cheaper on accelerators.
        return {
            name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
            for name, value in features.items()
        }

    options = tf.data.Options()
    options.deterministic = True
    return batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2).with_options(options)


def evaluation_dataset(
    files: list[str], *, batch_size: int, max_seq_length: int, max_predictions_per_seq: int
) -> tf.data.Dataset:
    """Every record once, in order, the last batch possibly smaller."""
    spec = parse_spec(max_seq_length, max_predictions_per_seq)

    def parse(serialized):
        features = tf.io.parse_example(serialized, spec)
        return {
            name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
            for name, value in features.items()
        }

    return tf.data.TFRecordDataset(files).batch(batch_size).map(parse).prefetch(2)
