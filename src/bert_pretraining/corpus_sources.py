"""Reading corpus files as people have them: formats, compression, bad records.

A corpus file is one of the formats of ``corpus.format`` (see the schema),
plain or compressed with gzip, bzip2, xz or zstd. The format is told from the
file name after its compression suffix (``crawl.jsonl.zst`` is zstd-compressed
JSON Lines) unless the config names it. Every reader streams: at most one
document (one JSON line, one Parquet row, one whole file for
``document_per_file``) is held in memory.

A reader yields :class:`RawDocument` (the document's text lines and where it
came from) or :class:`BadRecord` (what was wrong, and where); the preparation
decides whether a bad record stops it or is counted and skipped
(``corpus.on_bad_record``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from .errors import CorpusError

try:  # a dependency of the package; an environment without it (training.python's) never reads zstd
    from zstandard import ZstdError as ZSTD_ERROR
except ImportError:
    ZSTD_ERROR = OSError

COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
FORMAT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".txt": "bert",
    ".text": "bert",
}
FORMATS = ("bert", "document_per_line", "document_per_file", "jsonl", "parquet")
# The first bytes of each compressed format, to name it when a file's name does not.
MAGIC_BYTES = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
# Optional dependencies and the extra of pyproject.toml that installs each.
EXTRAS = {"pyarrow": "parquet"}


@dataclass(frozen=True)
class RawDocument:
    """One document as read, and where it starts.

    ``lines``: BERT-format sentences, or the text (a JSON string, a Parquet
    value) whose own newlines separate paragraphs.
    """

    where: str
    lines: list[str]


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be read: ``reason`` is a short key for the statistics."""

    where: str
    reason: str
    message: str


def compression_of(path: str) -> str | None:
    """gzip, bzip2, xz, zstd or None, from the file name."""
    return COMPRESSION_SUFFIXES.get(os.path.splitext(path)[1].lower())


def format_of(path: str, configured: str = "auto") -> str | None:
    """The format of ``path``: the configured one, or told from the name; None when the name does not tell."""
    if configured != "auto":
        return configured
    name = path[: -len(os.path.splitext(path)[1])] if compression_of(path) else path
    return FORMAT_SUFFIXES.get(os.path.splitext(name)[1].lower())


def unknown_format_message(path: str) -> str:
    known = ", ".join(sorted(FORMAT_SUFFIXES))
    return (
        f"{path}: the file name does not tell the corpus format; expected a name ending in one of {known} "
        f"(before a compression suffix {', '.join(sorted(COMPRESSION_SUFFIXES))}), or corpus.format set to one "
        f"of {', '.join(FORMATS)}"
    )


def require(module: str):
    """Import an optional dependency; its absence is a CorpusError naming the extra that installs it."""
    try:
        return __import__(module)
    except ImportError:
        command = f"pip install 'bert-pretraining[{EXTRAS[module]}]'" if module in EXTRAS else f"pip install {module}"
        raise CorpusError(
            f"reading this corpus needs the Python package {module}, which is not installed; "
            f"expected it installed: {command}"
        ) from None


def open_binary(path: str) -> BinaryIO:
    """The file's bytes, decompressed as its name says."""
    compression = compression_of(path)
    try:
        if compression == "gzip":
            return gzip.open(path, "rb")
        if compression == "bzip2":
            return bz2.open(path, "rb")
        if compression == "xz":
            return lzma.open(path, "rb")
        if compression == "zstd":
            return io.BufferedReader(ZstdReader(path), buffer_size=1 << 20)
        return open(path, "rb", buffering=1 << 20)
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read ({error.strerror or error}); expected a corpus file") from None


class ZstdReader(io.RawIOBase):
    """The decompressed bytes of a zstd file of one or more frames; a cut-off file is an OSError.

    (zstandard's own stream reader ends quietly where a truncated file ends.)
    """

    def __init__(self, path: str):
        self.zstandard = require("zstandard")
        self.file = open(path, "rb")
        self.decompressor = self.zstandard.ZstdDecompressor().decompressobj()
        self.pending = b""
        self.in_frame = False  # a frame has begun and not ended

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            chunk = self.file.read(1 << 20)
            if not chunk:
                if self.in_frame:
                    raise OSError("the last zstd frame is cut off")
                return 0
            self.pending = self.decompress(chunk)
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count

    def decompress(self, chunk: bytes) -> bytes:
        output = []
        while chunk:
            output.append(self.decompressor.decompress(chunk))
            self.in_frame = not self.decompressor.eof
            chunk = b""
            if self.decompressor.eof:  # another frame may follow (files concatenated, pzstd)
                chunk = self.decompressor.unused_data
                self.decompressor = self.zstandard.ZstdDecompressor().decompressobj()
        return b"".join(output)

    def close(self) -> None:
        self.file.close()
        super().close()


def sniff_compression(path: str) -> str | None:
    """The compression the file's first bytes show, whatever its name says."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    return next((name for magic, name in MAGIC_BYTES.items() if head.startswith(magic)), None)


def decode_line(raw: bytes, path: str, line_number: int) -> str | BadRecord:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        hint = ""
        if line_number == 1 and (found := sniff_compression(path)):
            hint = f"; the file starts like {found}-compressed data: name it with the suffix of {found}"
        return BadRecord(
            f"{path}:{line_number}", "invalid_utf8",
            f"{path}:{line_number}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start + 1} "
            f"of the line){hint}; expected UTF-8 text",
        )
    if line_number == 1 and line.startswith("\ufeff"):
        line = line[1:]
    return line


def numbered_lines(path: str, stream: BinaryIO) -> Iterator[tuple[int, str | BadRecord]]:
    """Each line of a stream decoded (or a BadRecord), without its line end, numbered from 1."""
    try:
        for line_number, raw in enumerate(stream, start=1):
            yield line_number, decode_line(raw.rstrip(b"\r\n"), path, line_number)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ZSTD_ERROR) as error:
        raise CorpusError(
            f"{path}: the compressed data is damaged or cut off ({error}); expected a complete "
            f"{compression_of(path) or 'compressed'} file"
        ) from None


def read_bert(path: str) -> Iterator[RawDocument | BadRecord]:
    """BERT's format: a line is a sentence, a blank line ends a document, so does the end of the file."""
    lines: list[str] = []
    start = 1
    with open_binary(path) as stream:
        for line_number, line in numbered_lines(path, stream):
            if isinstance(line, BadRecord):
                yield line
            elif line.strip():
                if not lines:
                    start = line_number
                lines.append(line)
            elif lines:
                yield RawDocument(f"{path}:{start}", lines)
                lines = []
    if lines:
        yield RawDocument(f"{path}:{start}", lines)


def read_document_per_line(path: str) -> Iterator[RawDocument | BadRecord]:
    with open_binary(path) as stream:
        for line_number, line in numbered_lines(path, stream):
            if isinstance(line, BadRecord):
                yield line
            elif line.strip():
                yield RawDocument(f"{path}:{line_number}", [line])


def read_document_per_file(path: str) -> Iterator[RawDocument | BadRecord]:
    with open_binary(path) as stream:
        lines = []
        for _, line in numbered_lines(path, stream):
            if isinstance(line, BadRecord):
                yield line
                return  # the file is the record
            lines.append(line)
    yield RawDocument(path, lines)


def field_value(record, field: str):
    """The value at a dotted path (meta.text) of a parsed record; KeyError when a part is missing."""
    for part in field.split("."):
        if not isinstance(record, dict) or part not in record:
            raise KeyError(part)
        record = record[part]
    return record


def text_of(record, field: str, where: str) -> str | BadRecord:
    """The string at ``field`` of a record, or a BadRecord saying what was there instead."""
    try:
        value = field_value(record, field)
    except KeyError:
        keys = ", ".join(sorted(record)[:10]) if isinstance(record, dict) else type(record).__name__
        return BadRecord(where, "missing_field", f"{where}: no field {field!r} (corpus.text_field); the record has {keys}")
    if not isinstance(value, str):
        return BadRecord(
            where, "not_a_string",
            f"{where}: the field {field!r} (corpus.text_field) holds {type(value).__name__} {str(value)[:40]!r}; expected a string",
        )
    return value


def read_jsonl(path: str, text_field: str) -> Iterator[RawDocument | BadRecord]:
    with open_binary(path) as stream:
        for line_number, line in numbered_lines(path, stream):
            where = f"{path}:{line_number}"
            if isinstance(line, BadRecord):
                yield line
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                yield BadRecord(where, "invalid_json", f"{where}: not a JSON object ({error}); expected one JSON object per line")
                continue
            text = text_of(record, text_field, where)
            yield text if isinstance(text, BadRecord) else RawDocument(where, [text])


def read_parquet(path: str, text_field: str) -> Iterator[RawDocument | BadRecord]:
    """Rows of a Parquet file, streamed by batches of one row group at a time."""
    require("pyarrow")
    import pyarrow.parquet as parquet

    column = text_field.split(".")[0]
    with parquet_source(path) as source:
        try:
            table = parquet.ParquetFile(source)
        except Exception as error:  # pyarrow raises ArrowInvalid for a file that is not Parquet
            raise CorpusError(f"{path}: not a readable Parquet file ({error}); expected Parquet") from None
        columns = table.schema_arrow.names
        if column not in columns:
            yield BadRecord(
                path, "missing_column",
                f"{path}: no column {column!r} (corpus.text_field {text_field!r}); the file's columns are "
                f"{', '.join(columns)}",
            )
            return
        row = 0
        for batch in table.iter_batches(batch_size=1024, columns=[column]):
            for value in batch.column(0).to_pylist():
                where = f"{path}: row {row}"
                row += 1
                text = text_of({column: value}, text_field, where)
                yield text if isinstance(text, BadRecord) else RawDocument(where, [text])


class parquet_source:
    """A seekable Parquet file: the file itself, or a temporary decompressed copy of a compressed one."""

    def __init__(self, path: str):
        self.path = path
        self.temporary = None

    def __enter__(self):
        if compression_of(self.path) is None:
            return self.path
        self.temporary = tempfile.TemporaryFile(dir=os.environ.get("TMPDIR"))
        with open_binary(self.path) as stream:
            shutil.copyfileobj(stream, self.temporary, 1 << 20)
        self.temporary.seek(0)
        return self.temporary

    def __exit__(self, *exc):
        if self.temporary is not None:
            self.temporary.close()


def read_documents(path: str, file_format: str, text_field: str) -> Iterator[RawDocument | BadRecord]:
    """Every document of one corpus file in its format, and its bad records."""
    if file_format == "bert":
        return read_bert(path)
    if file_format == "document_per_line":
        return read_document_per_line(path)
    if file_format == "document_per_file":
        return read_document_per_file(path)
    if file_format == "jsonl":
        return read_jsonl(path, text_field)
    if file_format == "parquet":
        return read_parquet(path, text_field)
    raise CorpusError(unknown_format_message(path))


# ---------------------------------------------------------------- sizes


SAMPLE_BYTES = 1 << 20


def uncompressed_size(path: str) -> int:
    """The bytes of text a file holds: its size, or for a compressed file an estimate from its first MiB.

    For Parquet, the uncompressed size of all columns its metadata records.
    """
    size = os.path.getsize(path)
    compression = compression_of(path)
    if compression is None and format_of(path) == "parquet":
        try:
            import pyarrow.parquet as parquet

            metadata = parquet.ParquetFile(path).metadata
            return sum(metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups))
        except Exception:  # no pyarrow, or not readable: the preparation will say so
            return size
    if compression is None or size == 0:
        return size
    with open(path, "rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    decompressor = {
        "gzip": lambda: zlib.decompressobj(wbits=47),
        "bzip2": bz2.BZ2Decompressor,
        "xz": lzma.LZMADecompressor,
        "zstd": lambda: require("zstandard").ZstdDecompressor().decompressobj(),
    }[compression]()
    try:
        text = decompressor.decompress(head)
    except Exception:  # damaged: the preparation will name it
        return size
    return int(size * len(text) / max(1, len(head)))
