"""Reading TFRecords of pretraining examples without TensorFlow, for the tests.

The records stage only writes (training reads with tf.data); these check what
it wrote: the framing and CRCs, and the Example protobufs decoded field by
field (an independent decoder, so a test does not check the writer with its
own encoding).
"""

import struct
from typing import Iterator

from bert_pretraining.errors import RecordsError
from bert_pretraining.tfrecords import masked_crc32c


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
