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

import logging
import os
import time
from typing import Iterable, Iterator, TextIO

from tokenizers import Tokenizer
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer
from tokenizers.trainers import WordPieceTrainer

from .corpus import AtomicFile, file_sha256, read_lines
from .errors import CorpusError, VocabularyError
from .progress import DEFAULT_INTERVAL, Progress, format_duration
from .settings import setting_schema

log = logging.getLogger(__name__)

# Order matters: a trained vocabulary gets them at ids 0-4, like Google's
# vocabularies ([PAD] is 0, so zero padding is [PAD]).
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
UNK_TOKEN = "[UNK]"
CONTINUATION_PREFIX = "##"
MAX_INPUT_CHARS_PER_WORD = 100
# The config schema declares the defaults (vocabulary.size, vocabulary.min_frequency).
DEFAULT_VOCAB_SIZE = setting_schema("vocabulary", "size")["default"]
DEFAULT_MIN_FREQUENCY = setting_schema("vocabulary", "min_frequency")["default"]


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
    special tokens [CLS] [SEP] [MASK] [UNK] [PAD].
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
    missing = [token for token in ("[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]") if token not in present]
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


def _training_lines(input_files: list[str], progress: Progress, batch_size: int = 1000) -> Iterator[list[str]]:
    """The lines of the files, in batches, for ``Tokenizer.train_from_iterator``.

    Reading with ``read_lines`` reports bad UTF-8 with the file and line. The
    lines are stripped and the Rust trainer does not see the line endings; that
    gives the same words as ``Tokenizer.train(files)``, which feeds each line
    with its ending: the normaliser turns whitespace into spaces and drops
    control and format characters (a BOM), and the pre-tokenizer splits on
    whitespace. ``progress`` counts bytes: characters within a file (close
    enough), the file's exact size at its end.
    """
    batch: list[str] = []
    for path in input_files:
        size = os.path.getsize(path)
        counted = 0
        for _, line in read_lines(path):
            amount = len(line) + 1
            counted += amount
            progress.update(amount)
            if line:
                batch.append(line)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        progress.update(size - counted)
    if batch:
        yield batch


def train_vocabulary(
    input_files: list[str],
    output_path: str,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    do_lower_case: bool = False,
    min_frequency: int = DEFAULT_MIN_FREQUENCY,
    progress_interval: float = DEFAULT_INTERVAL,
    progress_stream: TextIO | None = None,
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
    give it. Its result is not reproducible to the id, with either call: HF's
    trainer numbers the ``##`` characters and breaks ties between equally
    frequent merges in hash-map order, which changes from run to run
    (huggingface/tokenizers#1794).
    """
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise VocabularyError(f"--vocab-size is {vocab_size}; expected at least {len(SPECIAL_TOKENS) + 1}")
    if min_frequency < 0:
        raise VocabularyError(f"--min-frequency is {min_frequency}; expected 0 or more")
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
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
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
            yield from _training_lines(input_files, progress)
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
            f"{output_path}: the trained vocabulary starts with {tokens[:5]}; expected {list(SPECIAL_TOKENS)}"
        )
    if len(tokens) < vocab_size:
        log.warning(
            "the corpus gives only %d tokens, fewer than --vocab-size %d (small corpus or high --min-frequency)",
            len(tokens),
            vocab_size,
        )
    write_vocabulary(output_path, tokens)
    return tokens
