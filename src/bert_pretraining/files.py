"""Input files named by glob patterns; files written whole or not at all, their digests, and JSON files.

Every output of the workflow that a killed job could leave half-written goes
through ``AtomicFile``: records, vocabularies, sidecars, configs, evaluations.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from typing import Iterable

from .errors import WorkflowError


def expand_patterns(
    patterns: str | Iterable[str],
    flag: str,
    *,
    what: str = "",
    error: type[Exception] = WorkflowError,
) -> list[str]:
    """The regular files matched by glob ``patterns``, sorted and deduplicated.

    ``patterns`` is a list, or one string of comma-separated patterns (Google's
    ``--input_file``). A pattern that matches no file, or no pattern at all, is
    ``error`` naming ``flag``, the pattern and ``what`` files were expected: a
    typo in a path must not silently shrink the input.
    """
    if isinstance(patterns, str):
        patterns = patterns.split(",")
    patterns = [pattern.strip() for pattern in patterns if pattern.strip()]
    expected = f"; expected {what}" if what else ""
    if not patterns:
        raise error(f"{flag} is empty{expected}")
    files: set[str] = set()
    for pattern in patterns:
        if os.path.isfile(pattern):
            # A literal path is taken as is, even if it contains glob
            # characters such as "[" (Snakemake passes file names).
            files.add(pattern)
            continue
        matched = [path for path in glob.glob(pattern) if os.path.isfile(path)]
        if not matched:
            raise error(
                f"{flag}: the pattern {pattern!r} matches no file (working directory {os.getcwd()}){expected}"
            )
        files.update(matched)
    return sorted(files)


class AtomicFile:
    """A file written under a temporary name and renamed into place on commit.

    The temporary file lives in the same directory as the target, so the final
    ``os.replace`` is atomic: a job killed half-way leaves no half-written file
    under the final name, and an existing file is only replaced by a complete
    one. Used as a context manager it commits on success and discards on error.
    """

    def __init__(self, path: str, mode: str = "w"):
        if mode not in ("w", "wb"):
            raise ValueError(f"AtomicFile mode must be 'w' or 'wb', not {mode!r}")
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self.temp_path = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
        try:
            if mode == "w":
                # newline="\n": the same bytes on every platform (determinism).
                self.file = open(self.temp_path, "w", encoding="utf-8", newline="\n")
            else:
                self.file = open(self.temp_path, "wb")
        except OSError as error:
            # An unwritable directory is reported for the file the user knows, not its temporary name.
            raise OSError(error.errno, error.strerror, path) from error
        self._done = False

    def write(self, data) -> int:
        return self.file.write(data)

    def close(self) -> None:
        """Finish writing (flush to disk) without renaming yet."""
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()

    def commit(self) -> None:
        """Close and move the complete file to its final name."""
        if self._done:
            return
        self.close()
        os.replace(self.temp_path, self.path)
        self._done = True

    def discard(self) -> None:
        """Close and delete the temporary file; the final name is untouched."""
        if self._done:
            return
        if not self.file.closed:
            self.file.close()
        try:
            os.remove(self.temp_path)
        except FileNotFoundError:
            pass
        self._done = True

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str, content, *, indent: int = 2, **dumps_options) -> None:
    """Write ``content`` as JSON (one trailing newline) through a temporary file."""
    with AtomicFile(path, "w") as out:
        out.write(json.dumps(content, indent=indent, **dumps_options) + "\n")


def read_json(path: str):
    """The JSON content of ``path``, or None when there is no such file."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_json_object(path: str, what: str, error: type[Exception], *, if_missing: str = "") -> dict:
    """The JSON object in ``path``; otherwise ``error`` naming the file and ``what`` it should be.

    ``if_missing`` is added to the message of a file that does not exist (what
    would have written it).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except FileNotFoundError:
        raise error(f"{path}: {what} does not exist" + (f"; expected {if_missing}" if if_missing else "")) from None
    except (OSError, ValueError) as problem:
        raise error(f"{path}: {what} is not readable JSON ({problem})") from None
    if not isinstance(content, dict):
        raise error(f"{path}: {what} holds a {type(content).__name__}; expected a JSON object")
    return content
