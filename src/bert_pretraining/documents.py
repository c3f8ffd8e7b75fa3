"""A shard's text as documents of token ids: the input of the records stage.

BERT's corpus format (one sentence per line, a blank line between documents),
tokenised by the Rust WordPiece tokenizer (HF tokenizers) in batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from operator import itemgetter

from .corpus import read_lines
from .errors import CorpusError
from .progress import Progress


@dataclass
class TextStats:
    """Counts from reading and tokenising the input."""

    documents: int = 0
    sentences: int = 0
    tokens: int = 0
    unknown_tokens: int = 0
    single_sentence_documents: int = 0
    sentences_without_tokens: int = 0
    sentences_longer_than_sequence: int = 0
    tokens_beyond_sequence: int = 0  # the tokens of those sentences past max_num_tokens: never trained on


def read_tokenized_documents(
    paths: list[str],
    tokenizer,
    unk_id: int,
    max_num_tokens: int,
    batch_size: int = 4096,
    label: str = "tokenize",
) -> tuple[list[list[tuple[int, ...]]], TextStats]:
    """Documents as lists of sentences of token ids (tuples).

    The ints of all sentences are shared (one object per vocabulary id), so a
    sentence costs 8 bytes a token, and building an instance copies
    references instead of creating ints.

    Lines are tokenised in batches by the Rust tokenizer. A line that gives
    no token (only control characters, say) is dropped, like Google's; a
    document left without sentences is dropped. A file without any text is an
    error: it is almost certainly a broken input, not an intended one.
    """
    stats = TextStats()
    documents: list[list[tuple[int, ...]]] = []
    shared_ids = tuple(range(tokenizer.get_vocab_size(with_added_tokens=True)))
    batch_lines: list[str] = []
    batch_documents: list[int] = []

    def flush() -> None:
        encodings = tokenizer.encode_batch_fast(batch_lines, add_special_tokens=False)
        sentences = tokens = unknown = empty = longer = beyond = 0
        for document_number, encoding in zip(batch_documents, encodings):
            ids = encoding.ids
            if not ids:
                empty += 1
                continue
            while len(documents) <= document_number:
                documents.append([])
            # itemgetter(*ids) returns a tuple for 2+ ids, the value for one.
            documents[document_number].append(itemgetter(*ids)(shared_ids) if len(ids) > 1 else (shared_ids[ids[0]],))
            sentences += 1
            tokens += len(ids)
            unknown += ids.count(unk_id)
            if len(ids) > max_num_tokens:
                longer += 1
                beyond += len(ids) - max_num_tokens
        stats.sentences += sentences
        stats.tokens += tokens
        stats.unknown_tokens += unknown
        stats.sentences_without_tokens += empty
        stats.sentences_longer_than_sequence += longer
        stats.tokens_beyond_sequence += beyond
        batch_lines.clear()
        batch_documents.clear()

    total_bytes = sum(os.path.getsize(path) for path in paths)
    document_number = 0
    with Progress(label, total=total_bytes, unit="bytes") as progress:
        for path in paths:
            lines_in_document = 0
            text_lines_in_file = 0
            done = 0  # characters read since the last progress update
            for _, line in read_lines(path):
                # Characters approximate bytes well enough for a progress line.
                done += len(line) + 1
                if line:
                    batch_lines.append(line)
                    batch_documents.append(document_number)
                    lines_in_document += 1
                    text_lines_in_file += 1
                    if len(batch_lines) >= batch_size:
                        flush()
                        progress.update(done)
                        done = 0
                elif lines_in_document:
                    document_number += 1
                    lines_in_document = 0
            progress.update(done)
            if lines_in_document:  # the end of a file ends a document
                document_number += 1
            if not text_lines_in_file:
                raise CorpusError(
                    f"{path}: the input file contains no text; expected one sentence per line, "
                    "a blank line between documents"
                )
        if batch_lines:
            flush()

    documents = [document for document in documents if document]
    stats.documents = len(documents)
    stats.single_sentence_documents = sum(1 for document in documents if len(document) == 1)
    return documents, stats
