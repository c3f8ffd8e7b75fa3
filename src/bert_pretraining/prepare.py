"""Corpus files as people have them -> prepared BERT-format text, one file per input file.

The preparation stage of the workflow (rule ``prepare_corpus``, one job per
input file; Snakemake's --groups/--group-components can put many small ones
into one SLURM job). For each document of an input file
(``corpus_sources``): normalise, split into sentences and cut long
sentences (``sentences``); drop it if shorter than ``min_document_chars``;
write the rest in BERT's format (one sentence per line, a blank line after
each document) to the file's prepared text, with the file's statistics beside
it as JSON. Duplicates across files are dropped later, when the prepared
files are sharded (``corpus.shard_corpus``), where all documents meet.

A bad record stops the job with a message naming the file, line or row
(``on_bad_record: fail``), or is counted and skipped (``skip``), the first
few logged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .corpus import WORDS_PER_SENTENCE_BINS, ShardSummary
from .corpus_sources import (
    BadRecord,
    compression_of,
    format_of,
    numbered_lines,
    open_binary,
    read_documents,
    unknown_format_message,
)
from .errors import ConfigError, CorpusError
from .files import AtomicFile, file_sha256, read_json, write_json
from .progress import Progress
from .run_layout import RunLayout
from .sentences import document_sentences, sentence_splitter

if TYPE_CHECKING:
    from .schema import CorpusSettings

log = logging.getLogger(__name__)

BAD_RECORDS_LOGGED_PER_FILE = 10


def splits_sentences(file_format: str, split_sentences: str | bool) -> bool:
    """Whether documents of this format are split into sentences (auto: all but BERT's format)."""
    if split_sentences == "auto":
        return file_format != "bert"
    return bool(split_sentences)


@dataclass
class FileStatistics:
    """What the preparation of one input file found (the keys of the statistics JSON)."""

    path: str
    format: str
    compression: str | None
    bytes: int
    # The file as read: a later run compares it (content, not modification time) to tell a changed corpus.
    sha256: str = ""
    mtime_ns: int = 0
    documents_read: int = 0
    bad_records: dict[str, int] = field(default_factory=dict)
    too_short: int = 0
    sentences_cut: int = 0
    prepared: int = 0


def check_files(paths: list[str], corpus: CorpusSettings) -> list[str]:
    """Each file's format; a name that does not tell it is refused (fail) or the file left out (skip).

    Also refuses sentence splitting without ``corpus.language``. Returns the
    files that will be prepared. Runs at plan time, before any job.
    """
    usable = []
    for path in paths:
        file_format = format_of(path, corpus.format)
        if file_format is None:
            if corpus.on_bad_record == "fail":
                raise ConfigError(f"corpus.files: {unknown_format_message(path)}")
            log.warning("%s; corpus.on_bad_record is skip: the file is left out", unknown_format_message(path))
            continue
        if splits_sentences(file_format, corpus.split_sentences) and not corpus.language:
            raise ConfigError(
                f"corpus.language is not set, but {path} ({file_format}) is split into sentences "
                f"(corpus.split_sentences {corpus.split_sentences}); expected the corpus language's ISO 639 code, "
                "for example fi or en, which chooses the sentence splitter's rules"
            )
        usable.append(path)
    return usable


SAMPLE_LINES = 2000
# A sample is called unsplit above these shares.
UNSPLIT_LONG_LINE_SHARE = 0.2
UNSPLIT_SINGLE_LINE_DOCUMENTS = 0.5


def unsplit_sample_warning(path: str, corpus: CorpusSettings) -> str | None:
    """For a file read as sentences (BERT format, not split): does its beginning look like documents instead?

    Reads the first ``SAMPLE_LINES`` lines: long lines (cut into pieces at
    ``max_sentence_chars``) or mostly one-line documents mean the file holds
    documents or paragraphs, not one sentence per line. Said at plan time.
    """
    file_format = format_of(path, corpus.format)
    if file_format != "bert" or splits_sentences(file_format, corpus.split_sentences):
        return None
    # Lines, not documents: a file without blank lines is one document, which must not be read whole.
    characters = long_characters = lines = documents = single_line = lines_in_document = 0
    try:
        with open_binary(path) as stream:
            for _, line in numbered_lines(path, stream):
                if isinstance(line, BadRecord):
                    continue
                if line.strip():
                    lines += 1
                    lines_in_document += 1
                    characters += len(line)
                    long_characters += len(line) if len(line) > corpus.max_sentence_chars else 0
                elif lines_in_document:
                    documents += 1
                    single_line += lines_in_document == 1
                    lines_in_document = 0
                if lines >= SAMPLE_LINES:
                    break
    except CorpusError:
        return None  # the preparation will name what is wrong
    if lines_in_document:  # the sample's last document, complete or not
        documents += 1
        single_line += lines_in_document == 1
    long_share = long_characters / max(1, characters)
    single_share = single_line / max(1, documents)
    if long_share < UNSPLIT_LONG_LINE_SHARE and (documents < 10 or single_share < UNSPLIT_SINGLE_LINE_DOCUMENTS):
        return None
    return (
        f"{path} is read as BERT format (one sentence per line) but looks unsplit in its first {lines} lines: "
        f"{long_share:.0%} of the text is in lines longer than corpus.max_sentence_chars ({corpus.max_sentence_chars}), "
        f"which are cut into pieces, and {single_share:.0%} of its {documents} documents are a single line "
        "(their next-sentence pairs are always random). If each line is a document, set corpus.format: "
        "document_per_line; to split the lines into sentences, set corpus.split_sentences: true (and corpus.language)"
    )


def describe_corpus(paths: list[str], corpus: CorpusSettings) -> str:
    """One line for the plan: the files by format and compression, and what the preparation does."""
    kinds: dict[str, int] = {}
    split = False
    for path in paths:
        file_format = format_of(path, corpus.format)
        split |= splits_sentences(file_format, corpus.split_sentences)
        kind = file_format + (f" {compression_of(path)}" if compression_of(path) else "")
        kinds[kind] = kinds.get(kind, 0) + 1
    files = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    steps = [f"split into sentences by the rules for {corpus.language!r}" if split else "not split into sentences"]
    steps.append("exact duplicates dropped" if corpus.deduplicate else "duplicates kept")
    steps.append(f"documents under {corpus.min_document_chars} characters dropped")
    steps.append(f"bad records: {corpus.on_bad_record}")
    return f"corpus: {len(paths)} files ({files}); {', '.join(steps)}"


SAMPLED_FILES = 100


def corpus_sample_warnings(paths: list[str], corpus: CorpusSettings) -> list[str]:
    """The unsplit-text warnings of the first ``SAMPLED_FILES`` files (every run's parse reads them)."""
    return [warning for path in paths[:SAMPLED_FILES] if (warning := unsplit_sample_warning(path, corpus))]


def prepare_file(path: str, corpus: CorpusSettings, output: str, statistics_output: str) -> FileStatistics:
    """Prepare one input file into ``output`` (BERT format) and its statistics into ``statistics_output``."""
    file_format = format_of(path, corpus.format)
    if file_format is None:
        raise CorpusError(unknown_format_message(path))
    status = os.stat(path)
    stats = FileStatistics(path, file_format, compression_of(path), status.st_size, file_sha256(path), status.st_mtime_ns)
    split = sentence_splitter(corpus.language) if splits_sentences(file_format, corpus.split_sentences) else None
    with AtomicFile(output) as out, Progress(f"prepare {path}", unit="documents", rate_unit="docs") as progress:
        for document in read_documents(path, file_format, corpus.text_field):
            if isinstance(document, BadRecord):
                count_bad_record(document, stats, corpus.on_bad_record)
                continue
            stats.documents_read += 1
            progress.update(1)
            sentences, cut = document_sentences(document.lines, split, corpus.max_sentence_chars)
            stats.sentences_cut += cut
            if sum(map(len, sentences)) < corpus.min_document_chars:
                stats.too_short += 1
                continue
            out.write("\n".join(sentences) + "\n\n")
            stats.prepared += 1
        write_json(statistics_output, vars(stats))
    log.info(
        "%s (%s%s): %d documents read, %d prepared; %d too short (under %d characters), %d bad records%s; "
        "%d sentences longer than %d characters cut",
        path, file_format, f", {stats.compression}" if stats.compression else "", stats.documents_read,
        stats.prepared, stats.too_short, corpus.min_document_chars, sum(stats.bad_records.values()),
        f" ({', '.join(f'{k} {v}' for k, v in sorted(stats.bad_records.items()))})" if stats.bad_records else "",
        stats.sentences_cut, corpus.max_sentence_chars,
    )
    return stats


def count_bad_record(record: BadRecord, stats: FileStatistics, on_bad_record: str) -> None:
    if on_bad_record == "fail":
        raise CorpusError(f"{record.message} (corpus.on_bad_record: skip would skip and count such records)")
    seen = sum(stats.bad_records.values())
    stats.bad_records[record.reason] = stats.bad_records.get(record.reason, 0) + 1
    if seen < BAD_RECORDS_LOGGED_PER_FILE:
        log.warning("skipped a bad record: %s", record.message)
    elif seen == BAD_RECORDS_LOGGED_PER_FILE:
        log.warning("%s: more bad records are skipped without a message; the statistics count them", stats.path)


# ---------------------------------------------------------------- the DAG's units

def changed_corpus_files(paths: list[str], run_dir: str) -> list[tuple[str, str]]:
    """(path, how) of the corpus files that differ from what the run's preparation read.

    Content decides: a file with another size or modification time is
    hashed and compared. Nothing is reported for a run prepared by a version
    that did not record the digests.
    """
    directory = RunLayout(run_dir).prepared_dir
    read = {}
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        stats = read_json(os.path.join(directory, name)) if name.endswith(".json") else None
        if isinstance(stats, dict) and stats.get("sha256"):
            read[os.path.abspath(stats["path"])] = stats
    if not read:
        return []
    changed = []
    for path in paths:
        stats = read.pop(os.path.abspath(path), None)
        if stats is None:
            changed.append((path, "is new since the preparation"))
            continue
        status = os.stat(path)
        if (status.st_size, status.st_mtime_ns) != (stats["bytes"], stats.get("mtime_ns")) and (
            file_sha256(path) != stats["sha256"]
        ):
            changed.append((path, "has another content than the preparation read"))
    changed += [(path, "was removed from corpus.files since the preparation") for path in sorted(read)]
    return changed


# The counts of the corpus statistics that total the files' counts.
TOTALLED = ("bytes", "documents_read", "too_short", "duplicates", "kept", "sentences", "characters", "sentences_cut")


def corpus_statistics(file_statistics: list[dict], summary: ShardSummary) -> dict:
    """The corpus statistics sidecar: each input file's preparation and sharding counts, and the totals.

    ``file_statistics[i]`` belongs to ``summary.input_files[i]`` (file i's prepared text).
    """
    files = []
    for prepared, path in zip(file_statistics, summary.input_files):
        shard = summary.files[path]
        files.append({**prepared, "duplicates": shard.duplicates, "kept": shard.kept,
                      "sentences": shard.sentences, "characters": shard.characters})
    bad_records: dict[str, int] = {}
    for entry in files:
        for reason, count in entry["bad_records"].items():
            bad_records[reason] = bad_records.get(reason, 0) + count
    total = {key: sum(entry[key] for entry in files) for key in TOTALLED}
    total.update(
        files=len(files),
        bad_records=bad_records,
        heldout=summary.heldout_documents,
        single_sentence_documents=summary.single_sentence_documents,
    )
    return {
        "total": total,
        "words_per_sentence": dict(zip(WORDS_PER_SENTENCE_BINS, summary.words_per_sentence)),
        "shard_documents": summary.shard_documents,
        "files": files,
    }
