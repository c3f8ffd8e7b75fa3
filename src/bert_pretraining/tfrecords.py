"""TFRecord files of BERT pretraining examples, written and read without TensorFlow.

Importing TensorFlow costs about half a GiB and several seconds; the records
stage runs one job per shard, so it writes the two simple formats involved by
hand:

* TFRecord framing, per record: uint64 length, masked CRC-32C of the length,
  the data, masked CRC-32C of the data (all little-endian);
* ``tf.train.Example`` protobufs, with exactly the features of Google's
  create_pretraining_data.py (see :func:`feature_spec`).

This module also holds the records *sidecar* (records.json): what a records
directory was made with, which training checks before it reads a record.
"""

from __future__ import annotations

import functools
import json
import os
import struct
from operator import itemgetter
from typing import Iterable, Iterator, Sequence

import google_crc32c

from .corpus import AtomicFile, file_sha256
from .errors import RecordsError

# --------------------------------------------------------------------------
# Feature layout
# --------------------------------------------------------------------------

# In Google's order; lengths are per example.
FEATURE_NAMES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_labels",
)


def feature_spec(max_seq_length: int, max_predictions_per_seq: int) -> dict[str, tuple[int, str]]:
    """``{name: (length, dtype)}`` of every feature, dtype "int64" or "float32".

    Training builds its parser from it, e.g.
    ``{name: tf.io.FixedLenFeature([length], getattr(tf, dtype)) ...}``.
    """
    return {
        "input_ids": (max_seq_length, "int64"),
        "input_mask": (max_seq_length, "int64"),
        "segment_ids": (max_seq_length, "int64"),
        "masked_lm_positions": (max_predictions_per_seq, "int64"),
        "masked_lm_ids": (max_predictions_per_seq, "int64"),
        "masked_lm_weights": (max_predictions_per_seq, "float32"),
        "next_sentence_labels": (1, "int64"),
    }


# --------------------------------------------------------------------------
# Protobuf encoding (the few wire-format pieces tf.train.Example needs)
# --------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 is encoded as its two's complement, 10 bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Token ids and lengths are small non-negative ints: a lookup table makes
# encoding an example a few joins, which matters for millions of examples.
_VARINT_TABLE_SIZE = 1 << 17
VARINT_TABLE_SIZE = _VARINT_TABLE_SIZE  # ids below this encode by table lookup


@functools.lru_cache(maxsize=1)
def _varint_table() -> tuple[bytes, ...]:
    # Built by varint length (1, 2 and 3 bytes), several times faster than
    # calling _varint 2**17 times; a test checks it against _varint.
    low7 = [bytes((0x80 | low,)) for low in range(0x80)]  # a low group with the continuation bit
    one = [bytes((value,)) for value in range(0x80)]
    two = [low + high for high in one[1:] for low in low7]  # 128 .. 2**14 - 1
    three = [low + middle for high in one[1 : _VARINT_TABLE_SIZE >> 14] for middle in [l7 + high for l7 in low7]
             for low in low7]  # 2**14 .. 2**17 - 1
    return tuple(one + two + three)


def _packed_varints(values: Sequence[int]) -> bytes:
    if not values:
        return b""
    if min(values) >= 0 and max(values) < _VARINT_TABLE_SIZE:
        table = _varint_table()
        return b"".join([table[value] for value in values])
    return b"".join([_varint(int(value)) for value in values])


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the payload length, the payload."""
    length = len(payload)
    prefix = _varint_table()[length] if length < _VARINT_TABLE_SIZE else _varint(length)
    return tag + prefix + payload


# Tags (field number << 3 | wire type 2) of the fields used here.
_TAG_1 = b"\x0a"  # Example.features, Features.feature entry, map key, *List.value
_TAG_2 = b"\x12"  # map value; Feature.float_list
_TAG_3 = b"\x1a"  # Feature.int64_list


def _int64_feature_from_packed(packed: bytes) -> bytes:
    return _length_delimited(_TAG_3, _length_delimited(_TAG_1, packed) if packed else b"")


def int64_feature(values: Sequence[int]) -> bytes:
    """A serialised ``tf.train.Feature`` holding an Int64List (packed)."""
    return _int64_feature_from_packed(_packed_varints(values))


def float_feature(values: Sequence[float]) -> bytes:
    """A serialised ``tf.train.Feature`` holding a FloatList (packed float32)."""
    packed = struct.pack(f"<{len(values)}f", *values)
    return _length_delimited(_TAG_2, _length_delimited(_TAG_1, packed) if values else b"")


@functools.lru_cache(maxsize=256)
def _map_key(name: str) -> bytes:
    return _length_delimited(_TAG_1, name.encode("utf-8"))


def serialize_example(features: dict[str, bytes]) -> bytes:
    """A serialised ``tf.train.Example`` from ``{name: serialised Feature}``."""
    entries = b"".join(
        [_length_delimited(_TAG_1, _map_key(name) + _length_delimited(_TAG_2, feature))
         for name, feature in features.items()]
    )
    return _length_delimited(_TAG_1, entries)


@functools.lru_cache(maxsize=1024)
def _weights_feature(num_predictions: int, max_predictions_per_seq: int) -> bytes:
    return float_feature([1.0] * num_predictions + [0.0] * (max_predictions_per_seq - num_predictions))


def _map_entry(name: str, feature: bytes) -> bytes:
    """One ``Features.feature`` map entry, exactly as :func:`serialize_example` writes it."""
    return _length_delimited(_TAG_1, _map_key(name) + _length_delimited(_TAG_2, feature))


def _int64_entry_prefix(name: str, packed_length: int) -> bytes:
    """The bytes of an Int64List map entry that precede its packed varints.

    They depend only on the name and the length of the packed bytes, so an
    entry is this prefix followed by the packed bytes.
    """
    entry = _map_entry(name, _int64_feature_from_packed(bytes(packed_length)))
    return entry[: len(entry) - packed_length]


class PretrainingExampleSerializer:
    """:func:`serialize_pretraining_example` for one shape, with its fixed parts precomputed.

    Everything that depends only on a length (map entry headers, padding,
    ``input_mask``, ``masked_lm_weights``, ``next_sentence_labels``) is built
    once; an example is then three table joins and one join of the pieces.
    :meth:`serialize` does not check its inputs: ids must be ints in
    ``[0, 2**17)`` (the varint table) and positions below ``max_seq_length``;
    :func:`serialize_pretraining_example` checks, then calls it. The bytes are
    those of the straightforward encoding (``serialize_example`` of the
    features), which the tests compare on random inputs.
    """

    def __init__(self, max_seq_length: int, max_predictions_per_seq: int):
        if not 1 <= max_seq_length < _VARINT_TABLE_SIZE or not 0 <= max_predictions_per_seq < _VARINT_TABLE_SIZE:
            raise ValueError(f"unsupported shape {max_seq_length}, {max_predictions_per_seq}")
        self.max_seq_length = max_seq_length
        self.max_predictions_per_seq = max_predictions_per_seq
        seq, pred = max_seq_length, max_predictions_per_seq
        self._table = _varint_table()
        # Varints of ids in the table take at most 3 bytes.
        self._ids_prefix = [_int64_entry_prefix("input_ids", n) for n in range(3 * seq + 1)]
        self._positions_prefix = [_int64_entry_prefix("masked_lm_positions", n) for n in range(3 * pred + 1)]
        self._masked_ids_prefix = [_int64_entry_prefix("masked_lm_ids", n) for n in range(3 * pred + 1)]
        self._segment_prefix = _int64_entry_prefix("segment_ids", seq)
        self._seq_padding = [bytes(seq - n) for n in range(seq + 1)]
        self._pred_padding = [bytes(pred - n) for n in range(pred + 1)]
        self._zeros = [bytes(n) for n in range(seq + 1)]
        self._ones = [b"\x01" * n for n in range(seq + 1)]
        self._mask_entries = [
            _map_entry("input_mask", _int64_feature_from_packed(b"\x01" * n + bytes(seq - n))) for n in range(seq + 1)
        ]
        self._weights_entries = [_map_entry("masked_lm_weights", _weights_feature(n, pred)) for n in range(pred + 1)]
        self._label_entries = [
            _map_entry("next_sentence_labels", _int64_feature_from_packed(bytes([v]))) for v in (0, 1)
        ]
        # Positions below 128 are one-byte varints: their bytes are the packed list.
        self._one_byte_positions = seq <= 0x80

    def serialize(
        self,
        input_ids: Sequence[int],
        segment_head: bytes,
        segment_tail: bytes,
        masked_lm_positions: Sequence[int],
        masked_lm_ids: Sequence[int],
        next_sentence_label: int,
    ) -> bytes:
        """One example; the segment ids are the bytes ``segment_head + segment_tail`` (0s and 1s)."""
        table = self._table
        length = len(input_ids)
        predictions = len(masked_lm_positions)
        seq_padding = self._seq_padding[length]
        pred_padding = self._pred_padding[predictions]
        pred_pad_length = self.max_predictions_per_seq - predictions
        # itemgetter(*values)(table) looks all values up in one C call (faster
        # than a comprehension or map(table.__getitem__)); it needs 2+ values.
        ids = b"".join(itemgetter(*input_ids)(table) if length > 1 else [table[v] for v in input_ids])
        if self._one_byte_positions:
            positions = bytes(masked_lm_positions)
        else:
            positions = b"".join([table[v] for v in masked_lm_positions])
        labels = b"".join(itemgetter(*masked_lm_ids)(table) if predictions > 1 else [table[v] for v in masked_lm_ids])
        body = b"".join(
            (
                self._ids_prefix[len(ids) + self.max_seq_length - length],
                ids,
                seq_padding,
                self._mask_entries[length],
                self._segment_prefix,
                segment_head,
                segment_tail,
                seq_padding,
                self._positions_prefix[len(positions) + pred_pad_length],
                positions,
                pred_padding,
                self._masked_ids_prefix[len(labels) + pred_pad_length],
                labels,
                pred_padding,
                self._weights_entries[predictions],
                self._label_entries[next_sentence_label],
            )
        )
        size = len(body)
        return _TAG_1 + (table[size] if size < _VARINT_TABLE_SIZE else _varint(size)) + body

    def serialize_pair(
        self,
        input_ids: Sequence[int],
        num_segment_a: int,
        masked_lm_positions: Sequence[int],
        masked_lm_ids: Sequence[int],
        next_sentence_label: int,
    ) -> bytes:
        """One example whose segment ids are ``num_segment_a`` 0s, then 1s."""
        return self.serialize(
            input_ids,
            self._zeros[num_segment_a],
            self._ones[len(input_ids) - num_segment_a],
            masked_lm_positions,
            masked_lm_ids,
            next_sentence_label,
        )


@functools.lru_cache(maxsize=16)
def pretraining_example_serializer(max_seq_length: int, max_predictions_per_seq: int) -> PretrainingExampleSerializer:
    return PretrainingExampleSerializer(max_seq_length, max_predictions_per_seq)


def serialize_pretraining_example(
    input_ids: Sequence[int],
    segment_ids: Sequence[int],
    masked_lm_positions: Sequence[int],
    masked_lm_ids: Sequence[int],
    next_sentence_label: int,
    max_seq_length: int,
    max_predictions_per_seq: int,
) -> bytes:
    """One example in Google's layout, zero-padded to the fixed lengths.

    ``input_mask`` is 1 over the real tokens; ``masked_lm_weights`` is 1.0 for
    real predictions and 0.0 for padding; ``next_sentence_labels`` is 1 for a
    random next segment (Google's convention).
    """
    length = len(input_ids)
    predictions = len(masked_lm_positions)
    if length > max_seq_length or len(segment_ids) != length:
        raise ValueError(f"an example has {length} tokens and {len(segment_ids)} segment ids; max {max_seq_length}")
    if predictions > max_predictions_per_seq or len(masked_lm_ids) != predictions:
        raise ValueError(f"an example has {predictions} masked positions; max {max_predictions_per_seq}")
    if next_sentence_label not in (0, 1) or not set(segment_ids) <= {0, 1}:
        raise ValueError("next_sentence_label and segment ids must be 0 or 1")
    in_table = all(
        not values or (min(values) >= 0 and max(values) < _VARINT_TABLE_SIZE)
        for values in (input_ids, masked_lm_positions, masked_lm_ids)
    )
    if in_table and max_seq_length < _VARINT_TABLE_SIZE and max_predictions_per_seq < _VARINT_TABLE_SIZE:
        return pretraining_example_serializer(max_seq_length, max_predictions_per_seq).serialize(
            input_ids, bytes(segment_ids), b"", masked_lm_positions, masked_lm_ids, int(next_sentence_label)
        )
    return reference_serialize_pretraining_example(
        input_ids, segment_ids, masked_lm_positions, masked_lm_ids, next_sentence_label,
        max_seq_length, max_predictions_per_seq,
    )


def reference_serialize_pretraining_example(
    input_ids: Sequence[int],
    segment_ids: Sequence[int],
    masked_lm_positions: Sequence[int],
    masked_lm_ids: Sequence[int],
    next_sentence_label: int,
    max_seq_length: int,
    max_predictions_per_seq: int,
) -> bytes:
    """The straightforward encoding (no checks): features, then ``serialize_example``.

    The definition of the bytes; the fast path must give the same.
    """
    seq_padding = [0] * (max_seq_length - len(input_ids))
    pred_padding = [0] * (max_predictions_per_seq - len(masked_lm_positions))
    return serialize_example(
        {
            "input_ids": int64_feature([*input_ids, *seq_padding]),
            "input_mask": int64_feature([1] * len(input_ids) + seq_padding),
            "segment_ids": int64_feature([*segment_ids, *seq_padding]),
            "masked_lm_positions": int64_feature([*masked_lm_positions, *pred_padding]),
            "masked_lm_ids": int64_feature([*masked_lm_ids, *pred_padding]),
            "masked_lm_weights": float_feature([1.0] * len(masked_lm_positions) + [0.0] * len(pred_padding)),
            "next_sentence_labels": int64_feature([int(next_sentence_label)]),
        }
    )


# --------------------------------------------------------------------------
# TFRecord framing
# --------------------------------------------------------------------------


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C (rotated and offset, so CRCs of CRCs differ)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_pack_u64 = struct.Struct("<Q").pack
_pack_u32 = struct.Struct("<I").pack


@functools.lru_cache(maxsize=4096)
def _record_header(length: int) -> bytes:
    """The 12 bytes before a record's data: its length and the length's masked CRC."""
    header = _pack_u64(length)
    return header + _pack_u32(masked_crc32c(header))


def frame_record(data: bytes) -> bytes:
    """One record as it is stored in a TFRecord file (uncompressed)."""
    return b"".join((_record_header(len(data)), data, _pack_u32(masked_crc32c(data))))


class TFRecordWriter:
    """Writes records to ``path`` atomically: the file appears only on commit.

    ``close()`` finishes the temporary file; ``commit()`` renames it into
    place; ``discard()`` deletes it. As a context manager: commit on success,
    discard on error.
    """

    def __init__(self, path: str):
        self.path = path
        self.count = 0
        self._file = AtomicFile(path, "wb")

    def write(self, data: bytes) -> None:
        self._file.write(frame_record(data))
        self.count += 1

    def write_many(self, records: Iterable[bytes], batch: int = 2048) -> None:
        """``write`` each record, framing them in batches (fewer file writes)."""
        value, pack, header = google_crc32c.value, _pack_u32, _record_header
        pending: list[bytes] = []
        for data in records:
            crc = value(data)
            pending += (header(len(data)), data, pack((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF))
            if len(pending) >= 3 * batch:
                self._file.write(b"".join(pending))
                self.count += len(pending) // 3
                pending.clear()
        if pending:
            self._file.write(b"".join(pending))
            self.count += len(pending) // 3

    def close(self) -> None:
        self._file.close()

    def commit(self) -> None:
        self._file.commit()

    def discard(self) -> None:
        self._file.discard()

    def __enter__(self) -> "TFRecordWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_records(path: str, records: Iterable[bytes]) -> int:
    """Write serialised records to a TFRecord file atomically; returns the count."""
    with TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    return writer.count


def iter_records(path: str) -> Iterator[bytes]:
    """The records of an uncompressed TFRecord file, CRCs checked."""
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise RecordsError(f"{path}: cannot be read ({error.strerror}); expected a TFRecord file") from None
    with handle:
        offset = 0
        while True:
            header = handle.read(12)
            if not header:
                return
            if len(header) < 12:
                raise RecordsError(f"{path}: truncated record header at byte {offset}; the file is incomplete")
            length_bytes = header[:8]
            (length,) = struct.unpack("<Q", length_bytes)
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(length_bytes) != length_crc:
                raise RecordsError(f"{path}: corrupt record length at byte {offset} (CRC mismatch)")
            data = handle.read(length)
            footer = handle.read(4)
            if len(data) < length or len(footer) < 4:
                raise RecordsError(f"{path}: truncated record at byte {offset}; the file is incomplete")
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise RecordsError(f"{path}: corrupt record data at byte {offset} (CRC mismatch)")
            yield data
            offset += 16 + length


def count_records(path: str) -> int:
    """Number of records in a TFRecord file (reads and checks them all)."""
    return sum(1 for _ in iter_records(path))


# --------------------------------------------------------------------------
# Protobuf decoding (for stats and tests)
# --------------------------------------------------------------------------


def _read_varint(buffer: bytes, position: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _fields(buffer: bytes) -> Iterator[tuple[int, int, object]]:
    """``(field_number, wire_type, value)`` of a serialised message."""
    position = 0
    while position < len(buffer):
        key, position = _read_varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _read_varint(buffer, position)
        elif wire_type == 1:
            value, position = buffer[position : position + 8], position + 8
        elif wire_type == 2:
            length, position = _read_varint(buffer, position)
            value, position = buffer[position : position + length], position + length
        elif wire_type == 5:
            value, position = buffer[position : position + 4], position + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        yield number, wire_type, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_feature(buffer: bytes) -> list:
    values: list = []
    for kind, _, payload in _fields(buffer):
        for _, wire_type, item in _fields(payload):
            if kind == 1:  # BytesList
                values.append(bytes(item))
            elif kind == 2:  # FloatList: packed (wire type 2) or one fixed32 (5)
                values.extend(struct.unpack(f"<{len(item) // 4}f", item))
            elif kind == 3:  # Int64List: packed or not
                if wire_type == 2:
                    position = 0
                    while position < len(item):
                        value, position = _read_varint(item, position)
                        values.append(_signed64(value))
                else:
                    values.append(_signed64(item))
    return values


def parse_example(data: bytes) -> dict[str, list]:
    """``{name: list of values}`` of a serialised ``tf.train.Example``."""
    features: dict[str, list] = {}
    for number, _, features_message in _fields(data):
        if number != 1:
            continue
        for entry_number, _, entry in _fields(features_message):
            if entry_number != 1:
                continue
            name, values = "", []
            for field_number, _, value in _fields(entry):
                if field_number == 1:
                    name = bytes(value).decode("utf-8")
                elif field_number == 2:
                    values = _parse_feature(value)
            features[name] = values
    return features


def read_examples(path: str) -> Iterator[dict[str, list]]:
    """The examples of a TFRecord file, parsed (no TensorFlow needed)."""
    for record in iter_records(path):
        yield parse_example(record)


# --------------------------------------------------------------------------
# The records sidecar (records.json)
# --------------------------------------------------------------------------

SIDECAR_FORMAT = "bert-pretraining-records/1"

# Flags every shard of a records directory must share; training reads the
# shards as one data set.
SHARED_FLAGS = (
    "max_seq_length",
    "max_predictions_per_seq",
    "vocab_sha256",
    "masked_lm_prob",
    "dupe_factor",
    "short_seq_prob",
    "do_whole_word_mask",
    "do_lower_case",
)
# What the held-out records must share with the training records to measure
# the same task (they may use another dupe_factor, short_seq_prob and seed).
HELDOUT_SHARED_FLAGS = (
    "max_seq_length",
    "max_predictions_per_seq",
    "vocab_sha256",
    "masked_lm_prob",
    "do_whole_word_mask",
    "do_lower_case",
)
SIDECAR_FIELDS = (
    "num_instances",
    "max_seq_length",
    "max_predictions_per_seq",
    "vocab_sha256",
    "masked_lm_prob",
    "dupe_factor",
    "short_seq_prob",
    "do_whole_word_mask",
    "do_lower_case",
    "random_seed",
    "files",
)


def write_records_sidecar(
    path: str,
    *,
    files: list[dict],
    max_seq_length: int,
    max_predictions_per_seq: int,
    vocab_sha256: str,
    masked_lm_prob: float,
    dupe_factor: int,
    short_seq_prob: float,
    do_whole_word_mask: bool,
    do_lower_case: bool,
    random_seed: int,
    heldout: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """Write records.json atomically and return its content.

    ``files`` is ``[{"file": basename, "num_instances": n, ...}]`` (training
    computes epoch sizes from the counts); ``heldout`` is one such entry or
    None. ``num_instances`` is the sum over ``files``. ``extra`` adds
    informational fields (totals of documents, tokens...).
    """
    for entry in files + ([heldout] if heldout else []):
        if not isinstance(entry.get("file"), str) or not isinstance(entry.get("num_instances"), int):
            raise RecordsError(f"{path}: file entry {entry!r} needs 'file' (a name) and 'num_instances' (an int)")
    content = {
        "format": SIDECAR_FORMAT,
        "num_instances": sum(entry["num_instances"] for entry in files),
        "max_seq_length": max_seq_length,
        "max_predictions_per_seq": max_predictions_per_seq,
        "vocab_sha256": vocab_sha256,
        "masked_lm_prob": masked_lm_prob,
        "dupe_factor": dupe_factor,
        "short_seq_prob": short_seq_prob,
        "do_whole_word_mask": do_whole_word_mask,
        "do_lower_case": do_lower_case,
        "random_seed": random_seed,
        "files": files,
    }
    if heldout is not None:
        content["heldout"] = heldout
    if extra:
        content.update({key: value for key, value in extra.items() if key not in content})
    with AtomicFile(path, "w") as out:
        out.write(json.dumps(content, indent=2) + "\n")
    return content


def read_records_sidecar(path: str) -> dict:
    """The content of a records.json, with its required fields checked."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except FileNotFoundError:
        raise RecordsError(
            f"{path}: records sidecar does not exist; expected the records.json written with the "
            "records (run the records stage first)"
        ) from None
    except (OSError, ValueError) as error:
        raise RecordsError(f"{path}: records sidecar is not readable JSON ({error})") from None
    if not isinstance(content, dict):
        raise RecordsError(f"{path}: records sidecar is not a JSON object")
    missing = [name for name in SIDECAR_FIELDS if name not in content]
    if missing:
        raise RecordsError(f"{path}: records sidecar lacks the field(s) {', '.join(missing)}")
    return content


def check_records_sidecar(
    sidecar_path: str,
    *,
    max_seq_length: int,
    max_predictions_per_seq: int,
    vocab_path: str | None = None,
    check_files: bool = True,
) -> dict:
    """Check that records fit the training flags; returns the sidecar content.

    Raises RecordsError naming the sidecar, the field, the value found and the
    value expected. With ``vocab_path`` the records' vocabulary hash must
    match that file; with ``check_files`` every listed record file must exist
    next to the sidecar.
    """
    content = read_records_sidecar(sidecar_path)
    expected = {"max_seq_length": max_seq_length, "max_predictions_per_seq": max_predictions_per_seq}
    for name, value in expected.items():
        if content[name] != value:
            raise RecordsError(
                f"{sidecar_path}: {name} is {content[name]} but training is configured with "
                f"{name} {value}; records must be generated with the same value (set in create_pretraining_data)"
            )
    if vocab_path is not None:
        if not os.path.isfile(vocab_path):
            raise RecordsError(f"{vocab_path}: vocabulary file does not exist; expected the vocabulary of the records")
        actual = file_sha256(vocab_path)
        if content["vocab_sha256"] != actual:
            raise RecordsError(
                f"{sidecar_path}: vocab_sha256 is {content['vocab_sha256']} but the vocabulary "
                f"{vocab_path} has sha256 {actual}; records must be generated with the vocabulary "
                "used for training (set --vocab_file in create_pretraining_data)"
            )
    if check_files:
        directory = os.path.dirname(sidecar_path)
        entries = list(content["files"]) + ([content["heldout"]] if content.get("heldout") else [])
        for entry in entries:
            path = os.path.join(directory, entry["file"])
            if not os.path.isfile(path):
                raise RecordsError(
                    f"{sidecar_path}: lists {entry['file']} but {path} does not exist; "
                    "expected every record file next to the sidecar (re-run the records stage)"
                )
    return content


def summarize_records_stats(stats_paths: list[str], heldout_stats_path: str | None = None) -> dict:
    """The sidecar fields from per-shard stats files (create_pretraining_data --stats_file).

    Checks that every shard used the same flags and vocabulary; returns the
    keyword arguments of :func:`write_records_sidecar` (without ``path``).
    """
    if not stats_paths:
        raise RecordsError("--stats: no stats files given; expected one per records shard")
    stats = [_read_stats(path) for path in stats_paths]
    first_path, first = stats_paths[0], stats[0]
    for path, shard in zip(stats_paths[1:], stats[1:]):
        _check_same(path, shard, first_path, first, SHARED_FLAGS)
    heldout = None
    heldout_stats = None
    if heldout_stats_path is not None:
        heldout_stats = _read_stats(heldout_stats_path)
        _check_same(heldout_stats_path, heldout_stats, first_path, first, HELDOUT_SHARED_FLAGS)
        if len(heldout_stats["files"]) != 1:
            raise RecordsError(
                f"{heldout_stats_path}: held-out records are in {len(heldout_stats['files'])} files; expected one"
            )
        heldout = {**heldout_stats["files"][0], "dupe_factor": heldout_stats["dupe_factor"],
                   "random_seed": heldout_stats["random_seed"]}

    files = []
    for path, shard in zip(stats_paths, stats):
        for entry in shard["files"]:
            files.append({**entry, "random_seed": shard["random_seed"]})
    names = [entry["file"] for entry in files] + ([heldout["file"]] if heldout else [])
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RecordsError(f"the stats files list the record file(s) {', '.join(duplicates)} more than once")

    def total(key: str) -> int:
        return sum(shard.get(key, 0) for shard in stats)

    return {
        "files": files,
        "heldout": heldout,
        **{name: first[name] for name in SHARED_FLAGS},
        # The seed of the first shard; each file's own seed is in its entry.
        "random_seed": first["random_seed"],
        "extra": {
            "vocab_size": first.get("vocab_size"),
            "num_documents": total("documents"),
            "num_tokens": total("tokens"),
            "num_unknown_tokens": total("unknown_tokens"),
            "single_sentence_documents": sum(
                shard.get("single_sentence_documents", {}).get("kept", 0) for shard in stats
            ),
            "instances_truncated": total("instances_truncated"),
            "random_next_instances": total("random_next_instances"),
        },
    }


def _read_stats(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            stats = json.load(handle)
    except FileNotFoundError:
        raise RecordsError(f"{path}: stats file does not exist; expected create_pretraining_data's --stats_file") from None
    except (OSError, ValueError) as error:
        raise RecordsError(f"{path}: stats file is not readable JSON ({error})") from None
    missing = [name for name in (*SHARED_FLAGS, "random_seed", "files", "num_instances") if name not in stats]
    if missing:
        raise RecordsError(f"{path}: stats file lacks the field(s) {', '.join(missing)}")
    return stats


def _check_same(path: str, stats: dict, reference_path: str, reference: dict, names: Iterable[str]) -> None:
    for name in names:
        if stats[name] != reference[name]:
            raise RecordsError(
                f"{path}: {name} is {stats[name]} but {reference_path} has {reference[name]}; "
                "all records of one sequence length must be made with the same flags and vocabulary"
            )
