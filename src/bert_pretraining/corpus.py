"""Reading BERT-format text, streaming, and cutting a corpus into shards.

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

import logging
import os
import random
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from .errors import ConfigError, CorpusError
from .files import AtomicFile, expand_patterns
from .progress import Progress

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
    """Yield ``(line_number, stripped_line)`` for every line of a UTF-8 file.

    Lines are decoded one at a time so that invalid UTF-8 is reported with the
    file and line number (a whole-file decode would only give a byte offset).
    """
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read ({error.strerror}); expected a corpus text file") from None
    with handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise CorpusError(
                    f"{path}:{line_number}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at "
                    f"byte {error.start + 1} of the line); corpus files must be UTF-8 text"
                ) from None
            if line_number == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield line_number, line.strip()


def iter_documents(paths: Iterable[str]) -> Iterator[list[str]]:
    """Yield each document of the files in order, as a list of sentences.

    Only one document is held in memory at a time.
    """
    for path in paths:
        document: list[str] = []
        for _, line in read_lines(path):
            if line:
                document.append(line)
            elif document:
                yield document
                document = []
        if document:
            yield document


@dataclass
class CorpusCounts:
    """What one pass over a corpus found."""

    documents: int = 0
    sentences: int = 0
    single_sentence_documents: int = 0
    documents_per_file: dict[str, int] = field(default_factory=dict)


def count_documents(paths: list[str]) -> CorpusCounts:
    """Count documents and sentences; also validates that every file is UTF-8."""
    counts = CorpusCounts()
    for path in paths:
        before = counts.documents
        for document in iter_documents([path]):
            counts.documents += 1
            counts.sentences += len(document)
            if len(document) == 1:
                counts.single_sentence_documents += 1
        counts.documents_per_file[path] = counts.documents - before
    return counts


# --------------------------------------------------------------------------
# Sharding
# --------------------------------------------------------------------------


def shard_name(index: int) -> str:
    """File name of training shard ``index``: shard_00000.txt, shard_00001.txt, ..."""
    return f"shard_{index:05d}.txt"


HELDOUT_NAME = "heldout.txt"


def choose_heldout(num_documents: int, fraction: float, seed: int) -> set[int]:
    """Indices of the held-out documents: about ``fraction`` of them, at least one.

    A pure function of its arguments, so the split is reproducible from the
    config alone.
    """
    count = max(1, round(num_documents * fraction))
    count = min(count, num_documents)
    return set(random.Random(seed).sample(range(num_documents), count))


@dataclass
class ShardSummary:
    """The result of :func:`shard_corpus`, for the log."""

    input_files: list[str]
    documents: int
    sentences: int
    single_sentence_documents: int
    heldout_documents: int
    shard_documents: list[int]


def check_shard_arguments(num_shards: int, heldout_fraction: float) -> None:
    """Reject impossible sharding arguments before reading anything."""
    if num_shards < 1:
        raise ConfigError(f"--num-shards is {num_shards}; expected at least 1")
    if not 0 < heldout_fraction < 1:
        raise ConfigError(
            f"--heldout-fraction is {heldout_fraction}; expected a fraction of documents "
            "strictly between 0 and 1 (at least one document is always held out)"
        )


def shard_corpus(
    input_files: list[str],
    output_dir: str,
    num_shards: int,
    heldout_fraction: float,
    seed: int,
) -> ShardSummary:
    """Split the corpus into ``num_shards`` training shards and a held-out file.

    Documents are never split. Document ``k`` of the training stream (the
    corpus in sorted-file order, minus held-out documents) goes to shard
    ``k % num_shards``, so shards get equal numbers of documents and the
    assignment depends on nothing but the inputs and the arguments. Outputs are
    ``output_dir/shard_00000.txt`` ... and ``output_dir/heldout.txt``, all
    renamed into place only after every one of them is complete.
    """
    check_shard_arguments(num_shards, heldout_fraction)
    if not input_files:
        raise CorpusError("--input: no input files given; expected corpus text files")

    # First pass: count (and validate UTF-8) before any output is opened, so
    # that a bad file fails fast and leaves existing outputs alone.
    counts = count_documents(input_files)
    for path, documents in counts.documents_per_file.items():
        if documents == 0:
            log.warning("%s contains no text (no non-blank line); it adds no document", path)
    if counts.documents == 0:
        raise CorpusError(
            f"the corpus is empty: {len(input_files)} input file(s) "
            f"({', '.join(input_files[:3])}{', ...' if len(input_files) > 3 else ''}) "
            "contain no non-blank line; expected one sentence per line, a blank line between documents"
        )
    heldout = choose_heldout(counts.documents, heldout_fraction, seed)
    training_documents = counts.documents - len(heldout)
    if training_documents < num_shards:
        raise CorpusError(
            f"the corpus has {counts.documents} documents ({len(heldout)} held out, "
            f"{training_documents} for training) but --num-shards is {num_shards}; "
            "expected at least one training document per shard (fewer shards, or more text)"
        )

    shard_documents = [0] * num_shards
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
            with Progress(label, total=counts.documents, unit="documents", rate_unit="docs") as progress:
                training_index = 0
                for document_index, document in enumerate(iter_documents(input_files)):
                    text = "\n".join(document) + "\n\n"
                    if document_index in heldout:
                        if first_pass:
                            heldout_file.write(text)
                    else:
                        shard = training_index % num_shards
                        if shard in group:
                            group[shard].write(text)
                            shard_documents[shard] += 1
                        training_index += 1
                    progress.update(1)
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
        documents=counts.documents,
        sentences=counts.sentences,
        single_sentence_documents=counts.single_sentence_documents,
        heldout_documents=len(heldout),
        shard_documents=shard_documents,
    )
