"""WordPiece tokenisation with BERT's rules, on HF ``tokenizers`` (Rust, fast).

The pipeline reproduces Google's ``FullTokenizer`` (BasicTokenizer followed by
WordpieceTokenizer): text cleaning, spaces around CJK characters, optional
lower-casing with accent stripping (uncased models only), splitting on
whitespace and punctuation, then greedy longest-match-first WordPiece with
``##`` continuation pieces; a word longer than 100 characters, or one that
cannot be pieced together from the vocabulary, becomes ``[UNK]``.

A vocabulary file is Google's vocab.txt: one token per line, the line number
(from 0) is the id.
"""

from __future__ import annotations

import codecs
import logging
import os
import random
import time
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Iterator, TextIO

from tokenizers import Tokenizer
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer
from tokenizers.trainers import WordPieceTrainer

from .corpus import read_lines
from .files import AtomicFile, file_sha256
from .errors import CorpusError, VocabularyError
from .progress import DEFAULT_INTERVAL, Progress, format_duration
from .schema import schema_default

log = logging.getLogger(__name__)

# BERT's special tokens by the names Transformers' tokenizer files give their
# roles. Order matters: a trained vocabulary gets them at ids 0-4, like
# Google's vocabularies ([PAD] is 0, so zero padding is [PAD]).
SPECIAL_TOKEN_ROLES = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
SPECIAL_TOKENS = tuple(SPECIAL_TOKEN_ROLES.values())
UNK_TOKEN = SPECIAL_TOKEN_ROLES["unk_token"]
CONTINUATION_PREFIX = "##"
MAX_INPUT_CHARS_PER_WORD = 100
# The config schema declares the defaults (vocabulary.size, vocabulary.min_frequency).
DEFAULT_VOCAB_SIZE = schema_default("vocabulary", "size")
DEFAULT_MIN_FREQUENCY = schema_default("vocabulary", "min_frequency")
DEFAULT_SAMPLE_SEED = schema_default("vocabulary", "sample_seed")


def _configure(tokenizer: Tokenizer, do_lower_case: bool) -> Tokenizer:
    # Accents are stripped only together with lower-casing, as in Google's
    # BasicTokenizer: a cased model keeps "é" distinct from "e".
    tokenizer.normalizer = BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=do_lower_case,
        lowercase=do_lower_case,
    )
    tokenizer.pre_tokenizer = BertPreTokenizer()
    return tokenizer


def tokenizer_from_vocab(vocab: dict[str, int], do_lower_case: bool) -> Tokenizer:
    """A BERT WordPiece tokenizer over an in-memory ``{token: id}`` vocabulary."""
    model = WordPiece(
        vocab=vocab,
        unk_token=UNK_TOKEN,
        continuing_subword_prefix=CONTINUATION_PREFIX,
        max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
    )
    return _configure(Tokenizer(model), do_lower_case)


def load_tokenizer(vocab_path: str, do_lower_case: bool) -> Tokenizer:
    """The tokenizer for a vocab.txt, after checking the file (VocabularyError)."""
    tokens = read_vocabulary(vocab_path)
    return tokenizer_from_vocab({token: index for index, token in enumerate(tokens)}, do_lower_case)


# --------------------------------------------------------------------------
# Vocabulary files
# --------------------------------------------------------------------------


def read_vocabulary(path: str) -> list[str]:
    """The tokens of a vocab.txt in id order, checked.

    Raises VocabularyError naming the file if it is missing, not UTF-8, has an
    empty or duplicated token (ids would be ambiguous), or lacks any of the
    SPECIAL_TOKENS.
    """
    if not os.path.isfile(path):
        raise VocabularyError(f"{path}: vocabulary file does not exist; expected a vocab.txt with one token per line")
    tokens: list[str] = []
    blank_lines: list[int] = []
    try:
        for line_number, token in read_lines(path):
            if not token:
                blank_lines.append(line_number)
            else:
                if blank_lines:
                    # A blank line before a token would shift every later id.
                    raise VocabularyError(
                        f"{path}:{blank_lines[0]}: empty line in the vocabulary; "
                        "expected one token per line (the line number is the token id)"
                    )
                tokens.append(token)
    except CorpusError as error:
        raise VocabularyError(str(error).replace("corpus files must", "vocabulary files must")) from None
    seen: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token in seen:
            raise VocabularyError(
                f"{path}:{index + 1}: token {token!r} repeats line {seen[token] + 1}; "
                "expected each token once (the line number is the token id)"
            )
        seen[token] = index
    check_special_tokens(path, seen)
    return tokens


def check_special_tokens(path: str, vocab: Iterable[str]) -> None:
    """VocabularyError naming the file and every special token it lacks."""
    present = set(vocab)
    missing = [token for token in SPECIAL_TOKENS if token not in present]
    if missing:
        raise VocabularyError(
            f"{path}: the vocabulary lacks the special token(s) {' '.join(missing)}; "
            f"expected all of {' '.join(SPECIAL_TOKENS)}"
        )


def vocab_sha256(path: str) -> str:
    """Hex SHA-256 of the vocabulary file's bytes (records and training compare it)."""
    return file_sha256(path)


def write_vocabulary(path: str, tokens: list[str]) -> None:
    """Write tokens one per line, atomically."""
    with AtomicFile(path, "w") as out:
        for token in tokens:
            out.write(token + "\n")


def copy_vocabulary(source: str, output: str) -> list[str]:
    """Check a user-supplied vocabulary and copy it (normalised) to ``output``."""
    tokens = read_vocabulary(source)
    write_vocabulary(output, tokens)
    return tokens


def case_mismatch_warning(tokens: list[str], do_lower_case: bool) -> str | None:
    """A warning when the vocabulary's casing contradicts ``do_lower_case``.

    A cased vocabulary with lower-casing wastes its upper-case entries; an
    uncased one without lower-casing turns every capitalised word into pieces
    or [UNK]. Heuristic, so only a warning.
    """
    words = [token for token in tokens if token not in SPECIAL_TOKENS and any(c.isalpha() for c in token)]
    if not words:
        return None
    cased = sum(1 for token in words if any(c.isupper() for c in token))
    if do_lower_case and cased > 0.05 * len(words):
        return (
            f"do_lower_case is true but {cased} of {len(words)} vocabulary tokens contain "
            "upper-case letters (a cased vocabulary); set do_lower_case false for a cased model"
        )
    if not do_lower_case and cased == 0:
        return (
            "do_lower_case is false but no vocabulary token contains an upper-case letter "
            "(an uncased vocabulary); set do_lower_case true for an uncased model"
        )
    return None


# --------------------------------------------------------------------------
# Training a vocabulary
# --------------------------------------------------------------------------


def _training_lines(
    input_files: list[str], progress: Progress, batch_size: int = 1000, sample: LineSample | None = None
) -> Iterator[list[str]]:
    """The lines of the files, in batches, for ``Tokenizer.train_from_iterator``.

    Reading with ``read_lines`` reports bad UTF-8 with the file and line. The
    lines are stripped and the Rust trainer does not see the line endings; that
    gives the same words as ``Tokenizer.train(files)``, which feeds each line
    with its ending: the normaliser turns whitespace into spaces and drops
    control and format characters (a BOM), and the pre-tokenizer splits on
    whitespace. ``progress`` counts bytes: characters within a file (close
    enough), the file's exact size at its end. With ``sample``, only the lines
    it draws.
    """
    keep = sample.drawer() if sample else None
    batch: list[str] = []
    for path in input_files:
        size = os.path.getsize(path)
        counted = 0
        for _, line in read_lines(path):
            amount = len(line) + 1
            counted += amount
            progress.update(amount)
            if line and (keep is None or keep()):
                batch.append(line)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        progress.update(size - counted)
    if batch:
        yield batch


@dataclass(frozen=True)
class LineSample:
    """Each non-empty line is kept with probability ``fraction``, drawn from ``random.Random(seed)``."""

    fraction: float
    seed: int

    @classmethod
    def of(cls, total_bytes: int, sample_bytes: int | None, seed: int) -> "LineSample | None":
        """About ``sample_bytes`` of ``total_bytes``; None when that is everything."""
        if sample_bytes is None or sample_bytes >= total_bytes:
            return None
        return cls(sample_bytes / total_bytes, seed)

    def drawer(self):
        """A fresh draw for each pass over the files: every pass keeps the same lines."""
        rng = random.Random(self.seed)
        return lambda: rng.random() < self.fraction


def _is_isolated(char: str) -> bool:
    """A character BERT's pre-tokenizer always makes a word of its own (so never a ``##`` piece).

    Whitespace splits words; punctuation (Google's definition, which HF's
    BertPreTokenizer follows: ASCII symbols and Unicode category P*) and CJK
    ideographs (spaced out by the normaliser) stand alone.
    """
    code = ord(char)
    if char.isspace() or 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    if unicodedata.category(char).startswith("P"):
        return True
    return any(low <= code <= high for low, high in _CJK_RANGES)


CHARACTER_PASS_CHUNK_BYTES = 16 * 2**20

# Google's _is_chinese_char ranges, which HF's BertNormalizer spaces out.
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def continuation_characters(
    input_files: list[str], tokenizer: Tokenizer, progress: Progress, sample: LineSample | None = None
) -> list[str]:
    """``##c`` for every character c that can continue a word of the normalised text, sorted.

    HF's trainer creates these tokens while it iterates over its word counts,
    a hash map whose order changes from process to process, and the ids they
    get decide ties between equally frequent merges (huggingface/tokenizers
    #1794). Registered before training, in code-point order, they have fixed
    ids and the whole vocabulary is reproducible. The normaliser works
    character by character, so normalising each distinct raw character gives
    the normalised text's characters. A character that only ever starts words
    costs one unused token.
    """
    raw: set[str] = set()
    if sample:
        # Exactly the lines the counting pass will see.
        for batch in _training_lines(input_files, progress, sample=sample):
            for line in batch:
                raw.update(line)
    else:
        for path in input_files:
            # Whole chunks, not lines: a set of characters is all this pass needs.
            # Bad UTF-8 is reported, with its line, by the counting pass.
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            with open(path, "rb") as handle:
                while chunk := handle.read(CHARACTER_PASS_CHUNK_BYTES):
                    raw.update(decoder.decode(chunk))
                    progress.update(len(chunk))
    normalized: set[str] = set()
    for char in raw:
        normalized.update(tokenizer.normalizer.normalize_str(char))
    return [CONTINUATION_PREFIX + char for char in sorted(normalized) if not _is_isolated(char)]


def train_vocabulary(
    input_files: list[str],
    output_path: str,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    do_lower_case: bool = False,
    min_frequency: int = DEFAULT_MIN_FREQUENCY,
    progress_interval: float = DEFAULT_INTERVAL,
    progress_stream: TextIO | None = None,
    sample_bytes: int | None = None,
    sample_seed: int = DEFAULT_SAMPLE_SEED,
) -> list[str]:
    """Train a WordPiece vocabulary on text files and write it as vocab.txt.

    The special tokens get ids 0-4 in the order of SPECIAL_TOKENS. The result
    can be smaller than ``vocab_size`` on a small corpus (logged). Returns the
    tokens in id order.

    Progress of the long first phase, reading the files and counting words, is
    reported with ``Progress`` on ``progress_stream`` (stderr by default): a
    bar on a terminal, a plain line every ``progress_interval`` seconds in a
    log. The second phase, computing the WordPiece merges, is logged when it
    starts and when it ends.

    The trainer sees the same word counts as ``Tokenizer.train(files)`` would
    give it, and its result is reproducible byte for byte: the ``##``
    characters are registered first, in a fixed order (see
    ``continuation_characters``), after a first pass over the files that
    lists their characters. They follow the special tokens in the file.
    """
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise VocabularyError(f"--vocab_size is {vocab_size}; expected at least {len(SPECIAL_TOKENS) + 1}")
    if min_frequency < 0:
        raise VocabularyError(f"--min_frequency is {min_frequency}; expected 0 or more")
    for path in input_files:
        if not os.path.isfile(path):
            raise CorpusError(f"{path}: input file does not exist; expected a corpus text file")
    total_bytes = sum(os.path.getsize(path) for path in input_files)
    if not total_bytes:
        raise CorpusError(f"the input files ({', '.join(input_files)}) are empty; expected corpus text")

    tokenizer = _configure(
        Tokenizer(
            WordPiece(
                unk_token=UNK_TOKEN,
                continuing_subword_prefix=CONTINUATION_PREFIX,
                max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
            )
        ),
        do_lower_case,
    )
    sample = LineSample.of(total_bytes, sample_bytes, sample_seed)
    if sample:
        log.info(
            "training on a sample of about %.1f of %.1f MiB: each line kept with probability %.4f (seed %d)",
            sample_bytes / 2**20, total_bytes / 2**20, sample.fraction, sample.seed,
        )
    with Progress(
        "vocabulary, listing characters",
        total=total_bytes,
        unit="bytes",
        interval=progress_interval,
        stream=progress_stream,
    ) as progress:
        continuations = continuation_characters(input_files, tokenizer, progress, sample)
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[*SPECIAL_TOKENS, *continuations],
        continuing_subword_prefix=CONTINUATION_PREFIX,
        # Our own Progress reports the reading; the Rust bars would garble
        # a terminal next to it and are no use in a log.
        show_progress=False,
    )

    def lines_then_announce_merges() -> Iterator[list[str]]:
        # Runs inside train_from_iterator: the merge phase starts as soon as
        # this generator is exhausted.
        with Progress(
            "vocabulary, counting words",
            total=total_bytes,
            unit="bytes",
            interval=progress_interval,
            stream=progress_stream,
        ) as progress:
            yield from _training_lines(input_files, progress, sample=sample)
        log.info(
            "counted the words of %d files (%.1f MiB); computing the WordPiece merges up to %d tokens "
            "(no progress is shown for this phase)",
            len(input_files),
            total_bytes / 2**20,
            vocab_size,
        )

    start = time.monotonic()
    try:
        tokenizer.train_from_iterator(lines_then_announce_merges(), trainer)
    except CorpusError:
        raise  # bad UTF-8 or an unreadable file, named by read_lines
    except Exception as error:  # the Rust side raises plain Exceptions
        raise CorpusError(f"training the vocabulary on {', '.join(input_files)} failed: {error}") from None
    log.info("trained the vocabulary in %s", format_duration(time.monotonic() - start))

    vocab = tokenizer.get_vocab()
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    if [vocab[token] for token in tokens] != list(range(len(tokens))):
        raise VocabularyError(f"{output_path}: the trained vocabulary has gaps in its ids")
    if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise VocabularyError(
            f"{output_path}: the trained vocabulary starts with {tokens[: len(SPECIAL_TOKENS)]}; "
            f"expected {list(SPECIAL_TOKENS)}"
        )
    if len(tokens) < vocab_size:
        log.warning(
            "the corpus gives only %d tokens, fewer than --vocab_size %d (small corpus or high --min_frequency)",
            len(tokens),
            vocab_size,
        )
    write_vocabulary(output_path, tokens)
    return tokens
