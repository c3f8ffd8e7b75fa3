"""A document's text -> its sentences: normalisation, sentence splitting, long sentences cut.

Normalisation, in this order:

1. line ends ``\\r\\n`` and ``\\r`` become ``\\n`` (paragraph boundaries);
2. control characters (Unicode category Cc) other than tab and newline are
   removed;
3. Unicode NFC (composed characters: "ä" is one code point, as tokenizers and
   vocabularies expect);
4. within a line, every run of whitespace (spaces, tabs, no-break spaces, ...)
   becomes one space, and the line is stripped.

Every newline is a sentence boundary (paragraphs never share a sentence);
each line is then split into sentences by Wikimedia's sentencex with the
rules of ``corpus.language`` (docs/sentence-splitting.md compares it with
other splitters). A sentence longer than ``max_sentence_chars`` is cut at
whitespace into pieces no longer than that, so that a 50 MB line never
reaches the tokenizer whole.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Iterable

# Cc minus tab (\x09) and newline (\x0a); \r is turned into \n before.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def normalize(text: str) -> str:
    """Steps 1-3 of the module's normalisation (newlines kept, whitespace not yet collapsed)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = CONTROL_CHARACTERS.sub("", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def collapse_whitespace(line: str) -> str:
    return " ".join(line.split())


def cut_long(sentence: str, max_chars: int) -> list[str]:
    """``sentence`` (single spaces, stripped) in pieces of at most ``max_chars``.

    Cut at the last space that fits; a piece with no space is cut hard. The
    pieces joined with the separators cut away give the sentence back. The
    rest is walked by index, not sliced off: slicing copied the whole rest at
    every piece, minutes for one 50 MB line.
    """
    pieces = []
    start = 0
    while len(sentence) - start > max_chars:
        cut = sentence.rfind(" ", start, start + max_chars + 1)
        if cut <= start:
            pieces.append(sentence[start : start + max_chars])
            start += max_chars
        else:
            pieces.append(sentence[start:cut])
            start = cut + 1
    if start < len(sentence):
        pieces.append(sentence[start:])
    return pieces


def sentence_splitter(language: str | None) -> Callable[[str], list[str]]:
    """A function from one line of text to its sentences, by sentencex's rules for ``language``."""
    from sentencex import segment

    def split(line: str) -> list[str]:
        return [sentence.strip() for sentence in join_lowercase_continuations(segment(language, line))]

    return split


def join_lowercase_continuations(pieces: Iterable[str]) -> list[str]:
    """sentencex's pieces, a piece that opens with a non-ASCII lower-case letter joined to the one before.

    sentencex (1.0.32) lets a lower-case word continue a sentence only if it
    is ASCII ([0-9a-z]): "3. äänestyskierroksella" or "ns. äänestäjien" would
    otherwise be cut in two (docs/sentence-splitting.md measures both).
    """
    joined: list[str] = []
    for piece in pieces:
        first = piece.lstrip()[:1]
        if joined and first.islower() and not first.isascii():
            joined[-1] += piece
        else:
            joined.append(piece)
    return joined


def document_sentences(
    lines: list[str],
    split: Callable[[str], list[str]] | None,
    max_sentence_chars: int,
) -> tuple[list[str], int]:
    """The sentences of a document's raw lines, and how many sentences were cut as too long.

    ``split`` is a sentence splitter, or None to keep each line as one sentence.
    """
    sentences: list[str] = []
    cut = 0
    for raw in lines:
        for line in normalize(raw).split("\n"):
            line = collapse_whitespace(line)
            if not line:
                continue
            for sentence in split(line) if split else (line,):
                if not sentence:
                    continue
                if len(sentence) > max_sentence_chars:
                    sentences.extend(cut_long(sentence, max_sentence_chars))
                    cut += 1
                else:
                    sentences.append(sentence)
    return sentences, cut
