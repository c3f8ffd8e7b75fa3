"""Reading BERT-format text, streaming, and cutting a corpus into shards of unique documents.

BERT's pretraining text format (google-research/bert): UTF-8, one sentence per
line, a blank line between documents. Sentence boundaries matter because the
next-sentence task pairs real sentences; document boundaries matter because a
"next" sentence must come from the same document.

Everything here streams line by line, so a corpus never has to fit in memory.
Conventions, documented because they differ in small ways from Google's code:

* A line is stripped of surrounding whitespace; a line that is then empty is a
  document boundary, however many follow each other.
* The end of a file ends a document. (Google's script lets the last document of
  one file run on into the first of the next when a file does not end with a
  blank line; that merge is an accident of its loop, not a feature.)
* A UTF-8 byte-order mark at the start of a file is dropped.
* Documents with a single sentence are kept, as Google keeps them: they still
  give instances, whose second segment is always a random next segment.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import tempfile
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from .corpus_sources import BadRecord, numbered_lines, open_binary, read_bert
from .errors import ConfigError, CorpusError
from .files import AtomicFile, expand_patterns
from .progress import Progress
from .run_layout import HELDOUT_FILE_NAME as HELDOUT_NAME
from .run_layout import shard_file_name as shard_name

log = logging.getLogger(__name__)

# At most this many output files are open at once when sharding; more shards
# are written in several passes over the input (file-descriptor limits are
# often 1024 on cluster nodes).
MAX_OPEN_SHARDS = 256


def expand_corpus_files(patterns: str | Iterable[str], flag: str, error: type[Exception] = CorpusError) -> list[str]:
    """The corpus files named by glob ``patterns`` (a list, or one comma-separated string), sorted.

    Each pattern must match: ``error`` names ``flag`` and the pattern otherwise.
    """
    return expand_patterns(patterns, flag, what="plain-text corpus files", error=error)


def read_lines(path: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, stripped_line)`` for every line of a UTF-8 file (decompressed as its name says).

    Lines are decoded one at a time so that invalid UTF-8 is reported with the
    file and line number (a whole-file decode would only give a byte offset).
    """
    with open_binary(path) as stream:
        for line_number, line in numbered_lines(path, stream):
            if isinstance(line, BadRecord):
                raise CorpusError(line.message)
            yield line_number, line.strip()


def iter_documents(paths: Iterable[str]) -> Iterator[list[str]]:
    """Yield each document of the BERT-format files in order, as a list of sentences.

    Only one document is held in memory at a time.
    """
    for path in paths:
        for document in read_bert(path):
            if isinstance(document, BadRecord):
                raise CorpusError(document.message)
            yield [line.strip() for line in document.lines]


# --------------------------------------------------------------------------
# Exact deduplication
# --------------------------------------------------------------------------

# Documents per bucket of the duplicate search: the search holds one bucket's
# hashes (and numpy's sort of them) in memory at a time.
DOCUMENTS_PER_DEDUP_BUCKET = 4_000_000


def document_hash(document: list[str]) -> bytes:
    """An 8-byte digest of a document's sentences (equal documents, equal digests).

    64 bits: two different documents of a corpus of 100 million collide with
    a probability of about 3e-4, which would drop one of them.
    """
    return hashlib.blake2b("\n".join(document).encode("utf-8"), digest_size=8).digest()


def first_occurrences(hashes: "np.ndarray") -> "np.ndarray":
    """A boolean mask over the documents: True for the first of each set of equal hashes.

    The hashes are searched in buckets by their value, so memory is bounded
    by one bucket (``DOCUMENTS_PER_DEDUP_BUCKET``) plus one byte per document
    for the mask; ``hashes`` may be a memory map of a file.
    """
    import numpy as np

    count = len(hashes)
    keep = np.zeros(count, dtype=bool)
    buckets = max(1, -(-count // DOCUMENTS_PER_DEDUP_BUCKET))
    for bucket in range(buckets):
        members = np.flatnonzero(hashes % np.uint64(buckets) == bucket)
        # return_index gives the first index of each value (numpy sorts stably for it).
        _, first = np.unique(hashes[members], return_index=True)
        keep[members[first]] = True
    return keep


# --------------------------------------------------------------------------
# Sharding
# --------------------------------------------------------------------------


# Shard file names (shard_name: shard_00000.txt, ...; HELDOUT_NAME) are run_layout's.


def choose_heldout(num_documents: int, fraction: float, seed: int) -> set[int]:
    """Indices of the held-out documents: about ``fraction`` of them, at least one.

    A pure function of its arguments, so the split is reproducible from the
    config alone.
    """
    count = max(1, round(num_documents * fraction))
    count = min(count, num_documents)
    return set(random.Random(seed).sample(range(num_documents), count))


# Words (space-separated) per sentence, in bins of powers of two: 1, 2-3, 4-7, ..., 256 and more.
WORDS_PER_SENTENCE_BINS = ("1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128-255", "256+")


def words_per_sentence_bin(sentence: str) -> int:
    words = sentence.count(" ") + 1
    return min(words.bit_length(), len(WORDS_PER_SENTENCE_BINS)) - 1


@dataclass
class FileCounts:
    """What sharding found in one input file."""

    documents: int = 0
    duplicates: int = 0
    kept: int = 0
    sentences: int = 0
    characters: int = 0


@dataclass
class ShardSummary:
    """The result of :func:`shard_corpus`, for the log and the corpus statistics."""

    input_files: list[str]
    documents: int
    duplicates: int
    sentences: int
    characters: int
    single_sentence_documents: int
    heldout_documents: int
    shard_documents: list[int]
    files: dict[str, FileCounts]
    words_per_sentence: list[int]


def check_shard_arguments(num_shards: int, heldout_fraction: float) -> None:
    """Reject impossible sharding arguments before reading anything."""
    if num_shards < 1:
        raise ConfigError(f"--num_shards is {num_shards}; expected at least 1")
    if not 0 < heldout_fraction < 1:
        raise ConfigError(
            f"--heldout_fraction is {heldout_fraction}; expected a fraction of documents "
            "strictly between 0 and 1 (at least one document is always held out)"
        )


def find_duplicates(input_files: list[str], files: dict[str, FileCounts], work_dir: str, deduplicate: bool):
    """First pass: count documents per file (validating UTF-8); with ``deduplicate``, the mask of first copies.

    The documents' hashes go to a temporary file in ``work_dir``, so memory
    does not grow with the corpus (see :func:`first_occurrences`).
    """
    import numpy as np

    total = sum(os.path.getsize(path) for path in input_files)
    hashes = tempfile.TemporaryFile(dir=work_dir) if deduplicate else None
    try:
        with Progress("shard_corpus (reading)", total=total, unit="bytes", rate_unit="MiB") as progress:
            for path in input_files:
                for document in iter_documents([path]):
                    files[path].documents += 1
                    if hashes is not None:
                        hashes.write(document_hash(document))
                progress.update(os.path.getsize(path))
        if hashes is None:
            return None
        hashes.flush()
        count = sum(counts.documents for counts in files.values())
        if count == 0:
            return np.zeros(0, dtype=bool)
        return first_occurrences(np.memmap(hashes, dtype="<u8", mode="r", shape=(count,)))
    finally:
        if hashes is not None:
            hashes.close()


def shard_corpus(
    input_files: list[str],
    output_dir: str,
    num_shards: int,
    heldout_fraction: float,
    seed: int,
    deduplicate: bool = False,
) -> ShardSummary:
    """Split the corpus into ``num_shards`` training shards and a held-out file.

    With ``deduplicate``, only the first copy of a document (in sorted-file
    order) is kept. Documents are never split. Document ``k`` of the training
    stream (the kept documents in sorted-file order, minus held-out
    documents) goes to shard ``k % num_shards``, so shards get equal numbers
    of documents and the assignment depends on nothing but the inputs and the
    arguments. Outputs are ``output_dir/shard_00000.txt`` ... and
    ``output_dir/heldout.txt``, all renamed into place only after every one of
    them is complete.
    """
    check_shard_arguments(num_shards, heldout_fraction)
    if not input_files:
        raise CorpusError("--input: no input files given; expected corpus text files")
    for path in input_files:
        if not os.path.isfile(path):
            raise CorpusError(f"{path}: cannot be read (no such file); expected a corpus text file")

    # First pass: count (and validate UTF-8) before any output is opened, so
    # that a bad file fails fast and leaves existing outputs alone.
    files = {path: FileCounts() for path in input_files}
    os.makedirs(output_dir, exist_ok=True)
    keep = find_duplicates(input_files, files, output_dir, deduplicate)
    for path, counts in files.items():
        if counts.documents == 0:
            log.warning("%s contains no text (no non-blank line); it adds no document", path)
    read = sum(counts.documents for counts in files.values())
    if read == 0:
        raise CorpusError(
            f"the corpus is empty: {len(input_files)} input file(s) "
            f"({', '.join(input_files[:3])}{', ...' if len(input_files) > 3 else ''}) "
            "contain no non-blank line; expected one sentence per line, a blank line between documents"
        )
    documents = read if keep is None else int(keep.sum())
    heldout = choose_heldout(documents, heldout_fraction, seed)
    training_documents = documents - len(heldout)
    if training_documents < num_shards:
        raise CorpusError(
            f"the corpus has {documents} documents ({len(heldout)} held out, "
            f"{training_documents} for training) but --num_shards is {num_shards}; "
            "expected at least one training document per shard (fewer shards, or more text)"
        )

    shard_documents = [0] * num_shards
    words_per_sentence = [0] * len(WORDS_PER_SENTENCE_BINS)
    single_sentence_documents = 0
    outputs: list[AtomicFile] = []
    try:
        heldout_file = AtomicFile(os.path.join(output_dir, HELDOUT_NAME))
        outputs.append(heldout_file)
        # Shards are written in groups to bound the number of open files;
        # each group is one more pass over the input.
        for group_start in range(0, num_shards, MAX_OPEN_SHARDS):
            group_end = min(group_start + MAX_OPEN_SHARDS, num_shards)
            group = {
                index: AtomicFile(os.path.join(output_dir, shard_name(index)))
                for index in range(group_start, group_end)
            }
            outputs.extend(group.values())
            first_pass = group_start == 0
            label = f"shard_corpus (shards {group_start}-{group_end - 1})"
            with Progress(label, total=read, unit="documents", rate_unit="docs") as progress:
                document_index = training_index = kept_index = 0
                for path in input_files:
                    counts = files[path]
                    for document in iter_documents([path]):
                        progress.update(1)
                        duplicate = keep is not None and not keep[document_index]
                        document_index += 1
                        if duplicate:
                            counts.duplicates += first_pass
                            continue
                        if first_pass:
                            counts.kept += 1
                            counts.sentences += len(document)
                            counts.characters += sum(map(len, document))
                            single_sentence_documents += len(document) == 1
                            for sentence in document:
                                words_per_sentence[words_per_sentence_bin(sentence)] += 1
                        text = "\n".join(document) + "\n\n"
                        if kept_index in heldout:
                            if first_pass:
                                heldout_file.write(text)
                        else:
                            shard = training_index % num_shards
                            if shard in group:
                                group[shard].write(text)
                                shard_documents[shard] += 1
                            training_index += 1
                        kept_index += 1
            for output in group.values():
                output.close()
        for output in outputs:
            output.commit()
    except BaseException:
        for output in outputs:
            output.discard()
        raise

    return ShardSummary(
        input_files=list(input_files),
        documents=documents,
        duplicates=read - documents,
        sentences=sum(counts.sentences for counts in files.values()),
        characters=sum(counts.characters for counts in files.values()),
        single_sentence_documents=single_sentence_documents,
        heldout_documents=len(heldout),
        shard_documents=shard_documents,
        files=files,
        words_per_sentence=words_per_sentence,
    )
