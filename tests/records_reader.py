"""Reading TFRecords of pretraining examples without TensorFlow, for the tests.

The framing and CRCs are checked by the package's reader
(``tfrecords.iter_records``); the Example protobufs are decoded here field by
field (an independent decoder, so a test does not check the writer with its
own encoding).
"""

import struct
from typing import Iterator

# The framing and CRCs are read by the package's one reader; the Example decoder below is the tests' own.
from bert_pretraining.tfrecords import iter_records, scan_records


def count_records(path: str) -> int:
    """Number of records in a TFRecord file (reads and checks them all)."""
    return scan_records(path)


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
