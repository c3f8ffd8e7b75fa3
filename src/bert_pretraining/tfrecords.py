"""TFRecord files of BERT pretraining examples, written without TensorFlow.

Importing TensorFlow costs about half a GiB and several seconds; the records
stage runs one job per shard, so it writes the two simple formats involved by
hand:

* ``tf.train.Example`` protobufs with exactly the features of Google's
  create_pretraining_data.py (:func:`feature_spec`, :class:`ExampleSerializer`);
* TFRecord framing, per record: uint64 length, masked CRC-32C of the length,
  the data, masked CRC-32C of the data (all little-endian); and its reader
  (:func:`iter_records`, :func:`scan_records`), which names the file and the
  byte offset of a cut or corrupt record, where TensorFlow names neither.

The C accelerator (``_fast_instances.c``) writes the same Example bytes; the
tests hold the two to each other.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from typing import Iterable, Iterator, Sequence

import google_crc32c

from .errors import RecordsError
from .files import AtomicFile

# --------------------------------------------------------------------------
# Feature layout
# --------------------------------------------------------------------------


def feature_spec(max_seq_length: int, max_predictions_per_seq: int) -> dict[str, tuple[int, str]]:
    """``{name: (length, dtype)}`` of every feature in Google's order; dtype "int64" or "float32".

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
# tf.train.Example encoding (the few protobuf wire-format pieces it needs)
# --------------------------------------------------------------------------
#
# Example { Features features = 1 }; Features { map<string, Feature> feature
# = 1 }; a map entry { string key = 1; Feature value = 2 }; Feature {
# FloatList float_list = 2; Int64List int64_list = 3 }; *List { packed value
# = 1 }. Every field here is length-delimited: tag, varint length, payload.

_TAG_1 = b"\x0a"  # field 1, length-delimited
_TAG_2 = b"\x12"  # field 2
_TAG_3 = b"\x1a"  # field 3

VARINT_TABLE_SIZE = 1 << 17  # values below this encode by table lookup


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 is encoded as its two's complement, 10 bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@functools.lru_cache(maxsize=1)
def _varint_table() -> tuple[bytes, ...]:
    # Token ids are small non-negative ints: a lookup table makes encoding a
    # join. Built by varint length (1, 2 and 3 bytes), several times faster
    # than calling _varint 2**17 times; a test checks it against _varint.
    low7 = [bytes((0x80 | low,)) for low in range(0x80)]  # a low group with the continuation bit
    one = [bytes((value,)) for value in range(0x80)]
    two = [low + high for high in one[1:] for low in low7]  # 128 .. 2**14 - 1
    three = [low + middle for high in one[1 : VARINT_TABLE_SIZE >> 14] for middle in [l7 + high for l7 in low7]
             for low in low7]  # 2**14 .. 2**17 - 1
    return tuple(one + two + three)


def _packed_varints(values: Sequence[int]) -> bytes:
    if values and min(values) >= 0 and max(values) < VARINT_TABLE_SIZE:
        table = _varint_table()
        return b"".join([table[value] for value in values])
    return b"".join([_varint(value) for value in values])


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _map_entry(name: str, feature: bytes) -> bytes:
    """One ``Features.feature`` map entry: key ``name``, value the serialised ``feature``."""
    return _length_delimited(_TAG_1, _length_delimited(_TAG_1, name.encode("utf-8")) + _length_delimited(_TAG_2, feature))


def _int64_feature(packed: bytes) -> bytes:
    """A Feature holding an Int64List of packed varints (an empty list has no field)."""
    return _length_delimited(_TAG_3, _length_delimited(_TAG_1, packed) if packed else b"")


def _float_feature(packed: bytes) -> bytes:
    """A Feature holding a FloatList of packed little-endian float32s."""
    return _length_delimited(_TAG_2, _length_delimited(_TAG_1, packed) if packed else b"")


@functools.lru_cache(maxsize=None)
def _int64_entry_prefix(name: str, packed_length: int) -> bytes:
    """The bytes of an Int64List map entry before its packed varints.

    They depend only on the name and the length of the packed bytes, so an
    entry is this prefix followed by the packed bytes.
    """
    entry = _map_entry(name, _int64_feature(bytes(packed_length)))
    return entry[: len(entry) - packed_length]


class ExampleSerializer:
    """Serialised ``tf.train.Example`` s of one shape, in Google's layout.

    Features zero-padded to the fixed lengths: ``input_mask`` is 1 over the
    real tokens; ``masked_lm_weights`` 1.0 for real predictions and 0.0 for
    padding; ``next_sentence_labels`` 1 for a random next segment (Google's
    convention). The pieces that depend only on a length (map entry headers,
    ``input_mask``, ``masked_lm_weights``, ``next_sentence_labels``) are made
    once per shape, so an example is a few lookups and one join.
    """

    def __init__(self, max_seq_length: int, max_predictions_per_seq: int):
        seq, pred = max_seq_length, max_predictions_per_seq
        self.max_seq_length, self.max_predictions_per_seq = seq, pred
        self._mask_entries = [_map_entry("input_mask", _int64_feature(b"\x01" * n + bytes(seq - n)))
                              for n in range(seq + 1)]
        self._segment_prefix = _int64_entry_prefix("segment_ids", seq)
        self._weights_entries = [
            _map_entry("masked_lm_weights", _float_feature(struct.pack(f"<{pred}f", *[1.0] * n, *[0.0] * (pred - n))))
            for n in range(pred + 1)
        ]
        self._label_entries = [_map_entry("next_sentence_labels", _int64_feature(bytes([label]))) for label in (0, 1)]

    def serialize(
        self,
        input_ids: Sequence[int],
        segment_ids: Sequence[int],
        masked_lm_positions: Sequence[int],
        masked_lm_ids: Sequence[int],
        next_sentence_label: int,
    ) -> bytes:
        length, predictions = len(input_ids), len(masked_lm_positions)
        if length > self.max_seq_length or len(segment_ids) != length:
            raise ValueError(
                f"an example has {length} tokens and {len(segment_ids)} segment ids; max {self.max_seq_length}")
        if predictions > self.max_predictions_per_seq or len(masked_lm_ids) != predictions:
            raise ValueError(f"an example has {predictions} masked positions; max {self.max_predictions_per_seq}")
        if next_sentence_label not in (0, 1) or not set(segment_ids) <= {0, 1}:
            raise ValueError("next_sentence_label and segment ids must be 0 or 1")
        seq_padding = bytes(self.max_seq_length - length)  # a zero varint is one zero byte
        pred_padding = bytes(self.max_predictions_per_seq - predictions)
        ids = _packed_varints(input_ids) + seq_padding
        positions = _packed_varints(masked_lm_positions) + pred_padding
        labels = _packed_varints(masked_lm_ids) + pred_padding
        body = b"".join((
            _int64_entry_prefix("input_ids", len(ids)), ids,
            self._mask_entries[length],
            self._segment_prefix, bytes(segment_ids), seq_padding,
            _int64_entry_prefix("masked_lm_positions", len(positions)), positions,
            _int64_entry_prefix("masked_lm_ids", len(labels)), labels,
            self._weights_entries[predictions],
            self._label_entries[int(next_sentence_label)],
        ))
        return _length_delimited(_TAG_1, body)


# --------------------------------------------------------------------------
# TFRecord framing
# --------------------------------------------------------------------------


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C (rotated and offset, so CRCs of CRCs differ)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_pack_u64 = struct.Struct("<Q").pack
_pack_u32 = struct.Struct("<I").pack
_unpack_header = struct.Struct("<QI").unpack_from  # length, masked CRC of the length
_unpack_u32 = struct.Struct("<I").unpack_from
HEADER_BYTES, FOOTER_BYTES = 12, 4


@functools.lru_cache(maxsize=4096)
def _record_header(length: int) -> bytes:
    """The 12 bytes before a record's data: its length and the length's masked CRC."""
    header = _pack_u64(length)
    return header + _pack_u32(masked_crc32c(header))


def frame_record(data: bytes) -> bytes:
    """One record as it is stored in a TFRecord file (uncompressed)."""
    return b"".join((_record_header(len(data)), data, _pack_u32(masked_crc32c(data))))


class TFRecordWriter(AtomicFile):
    """Writes framed records to ``path`` atomically: the file appears only on commit.

    An AtomicFile (``close``, ``commit``, ``discard``; as a context manager,
    commit on success and discard on error) whose ``write`` takes one record's
    bytes and frames it.
    """

    def __init__(self, path: str):
        super().__init__(path, "wb")
        self.count = 0
        # The file's size and digest as written, for the records sidecar (no second read).
        self.bytes = 0
        self._sha256 = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def _write_framed(self, framed: list[bytes]) -> None:
        chunk = b"".join(framed)
        self.file.write(chunk)
        self._sha256.update(chunk)
        self.bytes += len(chunk)
        self.count += len(framed)

    def write(self, data: bytes) -> None:
        self.write_many((data,))

    def write_many(self, records: Iterable[bytes], batch: int = 2048) -> None:
        """Write each record, framed, in batches (fewer file writes)."""
        pending: list[bytes] = []
        for data in records:
            pending.append(frame_record(data))
            if len(pending) >= batch:
                self._write_framed(pending)
                pending.clear()
        if pending:
            self._write_framed(pending)


# Reads of this size keep the scan's system calls few and its memory small.
SCAN_BLOCK_BYTES = 16 << 20


def iter_records(path: str) -> Iterator[bytes]:
    """The records of an uncompressed TFRecord file, both CRCs of each checked.

    Raises RecordsError naming ``path`` and the byte offset of the first
    record that is cut short or whose length or data fails its CRC.
    """
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise RecordsError(f"{path}: cannot be read ({error.strerror}); expected a TFRecord file") from None
    with handle:
        buffer, position, offset = b"", 0, 0  # ``offset``: where buffer[position] is in the file
        while True:
            if len(buffer) - position < HEADER_BYTES:
                buffer, position = _refill(handle, buffer, position, HEADER_BYTES)
                if position == len(buffer):
                    return
                if len(buffer) < HEADER_BYTES:
                    raise RecordsError(
                        f"{path}: truncated record header at byte {offset} (the file ends at byte "
                        f"{offset + len(buffer)}); the file is incomplete")
            length, length_crc = _unpack_header(buffer, position)
            if masked_crc32c(buffer[position : position + 8]) != length_crc:
                raise RecordsError(f"{path}: corrupt record length at byte {offset} (CRC mismatch)")
            size = HEADER_BYTES + length + FOOTER_BYTES
            if len(buffer) - position < size:
                buffer, position = _refill(handle, buffer, position, size)
                if len(buffer) < size:
                    raise RecordsError(
                        f"{path}: truncated record at byte {offset} ({size} bytes, but the file ends at byte "
                        f"{offset + len(buffer)}); the file is incomplete")
            end = position + size
            data = buffer[position + HEADER_BYTES : end - FOOTER_BYTES]
            if masked_crc32c(data) != _unpack_u32(buffer, end - FOOTER_BYTES)[0]:
                raise RecordsError(f"{path}: corrupt record data at byte {offset} (CRC mismatch)")
            yield data
            offset += size
            position = end


def _refill(handle, buffer: bytes, position: int, needed: int) -> tuple[bytes, int]:
    """The unread rest of ``buffer`` and what follows in the file, at least ``needed`` bytes unless it ends."""
    chunks = [buffer[position:]]
    have = len(chunks[0])
    while have < needed:
        chunk = handle.read(max(SCAN_BLOCK_BYTES, needed - have))
        if not chunk:
            break
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks), 0


def scan_records(path: str) -> int:
    """The number of records in a TFRecord file, every frame and CRC checked (RecordsError if one fails)."""
    count = 0
    for _ in iter_records(path):
        count += 1
    return count
