"""Masked-LM / next-sentence instances, as Google's create_pretraining_data.py.

The algorithm and its random draws follow google-research/bert exactly, on
token ids instead of token strings:

* documents are shuffled, then each is used ``dupe_factor`` times, each time
  with fresh random segments and masks; all instances are shuffled at the end;
* with probability ``short_seq_prob`` an instance aims at a random shorter
  length (2 .. max_seq_length - 3), otherwise at the full length;
* sentences are gathered into a chunk until the target length; segment A is
  the first 1..n-1 sentences of the chunk; segment B is the rest of the chunk
  ("actual next", label 0) or, with probability 0.5 and always for a
  one-sentence chunk, text from a random other document ("random next",
  label 1), in which case the unused sentences of the chunk are put back;
* ``truncate_seq_pair`` cuts the longer segment, from the front or the back at
  random, until both fit (a sentence longer than the whole sequence is cut
  this way too);
* ``masked_lm_prob`` of the tokens (at least 1, at most
  ``max_predictions_per_seq``) are chosen among all but [CLS] and [SEP]; each
  is replaced by [MASK] 80% of the time, by a random vocabulary token 10%,
  and kept 10%.

Deliberate differences from Google's code, all on edge cases:

* Whole-word masking makes the 80/10/10 decision once per word, so all pieces
  of a word are treated alike (Google decides per piece, so a "whole-word"
  mask could leave some pieces visible: google-research/bert#910). Without
  whole-word masking every word is one piece and the random draws are
  Google's, draw for draw.
* With whole-word masking a ``##`` piece right after [CLS] or [SEP] starts a
  new word (Google would glue it to the last word of segment A across [SEP]).

Like Google's, a corpus with a single document takes its "random" next
segments from that same document (after ten tries at another one).

Everything above is a pure function of its inputs and an explicit
``random.Random``. :func:`create_pretraining_data` drives it for one shard:
tokenise (HF tokenizers, in batches), build instances, write TFRecords.
Memory is bounded by one shard: its token ids plus its serialised instances.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import asdict, dataclass
from operator import itemgetter
from typing import Callable, Iterable, NamedTuple, Sequence

from .corpus import AtomicFile, read_lines
from .errors import ConfigError, CorpusError
from .progress import Progress
from .tfrecords import VARINT_TABLE_SIZE, TFRecordWriter, pretraining_example_serializer, serialize_pretraining_example
from .tokenization import case_mismatch_warning, read_vocabulary, tokenizer_from_vocab, vocab_sha256

try:  # the inner loop in C (setup.py builds it; same draws, same instances)
    from . import _fast_instances as compiled
except ImportError:  # no C compiler at install time: the same algorithm in Python
    compiled = None

log = logging.getLogger(__name__)

# Probabilities of the replacement of a chosen token (Google's constants).
MASK_PROB = 0.8
KEEP_PROB_GIVEN_NOT_MASK = 0.5

MIN_SEQ_LENGTH = 8


@dataclass(frozen=True)
class InstanceOptions:
    """The flags of Google's script that shape instances (same defaults)."""

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    dupe_factor: int = 10
    do_whole_word_mask: bool = False


def check_instance_options(options: InstanceOptions) -> None:
    """ConfigError naming the flag for values the algorithm cannot work with."""
    if options.max_seq_length < MIN_SEQ_LENGTH:
        raise ConfigError(
            f"--max_seq_length is {options.max_seq_length}; expected at least {MIN_SEQ_LENGTH} "
            "([CLS], two [SEP] and a few tokens of text)"
        )
    maskable = options.max_seq_length - 3
    if not 1 <= options.max_predictions_per_seq <= maskable:
        raise ConfigError(
            f"--max_predictions_per_seq is {options.max_predictions_per_seq} but --max_seq_length "
            f"{options.max_seq_length} leaves {maskable} maskable positions ([CLS] and two [SEP] are "
            f"never masked); expected 1 to {maskable}"
        )
    if not 0 < options.masked_lm_prob <= 1:
        raise ConfigError(f"--masked_lm_prob is {options.masked_lm_prob}; expected a probability in (0, 1]")
    if not 0 <= options.short_seq_prob <= 1:
        raise ConfigError(f"--short_seq_prob is {options.short_seq_prob}; expected a probability in [0, 1]")
    if options.dupe_factor < 1:
        raise ConfigError(f"--dupe_factor is {options.dupe_factor}; expected at least 1")


@dataclass(frozen=True)
class VocabInfo:
    """What masking needs to know about the vocabulary, by id."""

    size: int
    cls_id: int
    sep_id: int
    mask_id: int
    # is_continuation[id] is true for "##" pieces; needed for whole-word masking.
    is_continuation: Sequence[bool] | bytes

    @classmethod
    def from_tokens(cls, tokens: Sequence[str]) -> "VocabInfo":
        index = {token: i for i, token in enumerate(tokens)}
        return cls(
            size=len(tokens),
            cls_id=index["[CLS]"],
            sep_id=index["[SEP]"],
            mask_id=index["[MASK]"],
            is_continuation=bytes(token.startswith("##") for token in tokens),
        )


@dataclass
class TrainingInstance:
    """One sentence pair: [CLS] A [SEP] B [SEP], with masks applied."""

    input_ids: list[int]
    segment_ids: list[int]
    masked_lm_positions: list[int]
    masked_lm_ids: list[int]  # the original ids at the masked positions
    is_random_next: bool
    num_truncated: int = 0  # tokens cut by truncate_seq_pair


class MaskedLmPredictions(NamedTuple):
    output_ids: list[int]
    positions: list[int]
    labels: list[int]


# --------------------------------------------------------------------------
# The algorithm
# --------------------------------------------------------------------------


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_num_tokens: int, rng: random.Random) -> int:
    """Cut the longer list (B on a tie), front or back at random, until both fit.

    Mutates the lists like Google's function (same random draws); returns how
    many tokens were cut.
    """
    # Track the kept window of each list instead of deleting from the front
    # one token at a time (quadratic on a long random next segment).
    a_start, a_end = 0, len(tokens_a)
    b_start, b_end = 0, len(tokens_b)
    removed = 0
    while (a_end - a_start) + (b_end - b_start) > max_num_tokens:
        cut_a = (a_end - a_start) > (b_end - b_start)
        # Sometimes the front, sometimes the back, to avoid biases (Google).
        from_front = rng.random() < 0.5
        if cut_a:
            if from_front:
                a_start += 1
            else:
                a_end -= 1
        elif from_front:
            b_start += 1
        else:
            b_end -= 1
        removed += 1
    if removed:
        tokens_a[:] = tokens_a[a_start:a_end]
        tokens_b[:] = tokens_b[b_start:b_end]
    return removed


# Random draws, inlined. For a plain ``random.Random`` these are exactly the
# draws of CPython's ``Random.shuffle`` / ``Random.randint`` (both go through
# ``_randbelow_with_getrandbits``: ``getrandbits(n.bit_length())`` redrawn
# while ``>= n``), so the output and the generator state stay those of
# Google's code; only Python's per-call overhead goes. A subclass that
# overrides any of them gets its own methods called instead.


def _runs_in_c(rng: random.Random) -> bool:
    """Whether the outer loop runs in C: the extension is built and ``rng``
    draws as ``random.Random`` does (the C code copies its state)."""
    return compiled is not None and _is_plain_random(rng)


def _is_plain_random(rng: random.Random) -> bool:
    cls = type(rng)
    base = random.Random
    return (
        isinstance(rng, base)
        and getattr(cls, "_randbelow", None) is base._randbelow_with_getrandbits
        and cls.shuffle is base.shuffle
        and cls.randint is base.randint
        and cls.randrange is base.randrange
    )


def _shuffle(x: list, getrandbits: Callable[[int], int], keep: int) -> None:
    """``Random.shuffle(x)`` draw for draw, of which only ``x[:keep]`` is needed.

    The Fisher-Yates loop of CPython (``i`` from ``len(x) - 1`` down to 1,
    ``j = _randbelow(i + 1)``, swap), with ``_randbelow`` inlined and grouped
    by the bit length of ``i + 1``. Steps that set ``x[i]`` for ``i >= keep``
    only move the old ``x[i]`` to ``x[j]`` (``x[i]`` is never read again),
    so ``x[keep:]`` is left stale; ``keep=len(x)`` shuffles all of ``x``.
    """
    top = len(x) - 1
    while top > 0:
        k = (top + 1).bit_length()  # of every i + 1 in this group
        low = (1 << (k - 1)) - 1  # the smallest i with (i + 1).bit_length() == k
        split = keep if keep > low else low
        for i in range(top, split - 1, -1):
            j = getrandbits(k)
            while j > i:
                j = getrandbits(k)
            x[j] = x[i]
        for i in range(top if top < split else split - 1, low - 1, -1):
            j = getrandbits(k)
            while j > i:
                j = getrandbits(k)
            x[i], x[j] = x[j], x[i]
        top = low - 1


def shuffle(x: list, rng: random.Random) -> None:
    """``rng.shuffle(x)``: the same permutation and generator state, faster."""
    if _is_plain_random(rng):
        _shuffle(x, rng.getrandbits, len(x))
    else:
        rng.shuffle(x)


class _Draws:
    """The draws of the algorithm for one generator: inlined or its methods."""

    __slots__ = ("rng", "random", "randint", "getrandbits")

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.random = rng.random
        if _is_plain_random(rng):
            getrandbits = self.getrandbits = rng.getrandbits

            def randint(a: int, b: int) -> int:
                n = b - a + 1  # a + Random._randbelow(n), inlined
                k = n.bit_length()
                r = getrandbits(k)
                while r >= n:
                    r = getrandbits(k)
                return a + r

            self.randint = randint
        else:
            self.getrandbits = None
            self.randint = rng.randint

    def shuffle(self, x: list, keep: int) -> None:
        if self.getrandbits is not None:
            _shuffle(x, self.getrandbits, keep)
        else:
            self.rng.shuffle(x)


def create_masked_lm_predictions(
    token_ids: Sequence[int],
    masked_lm_prob: float,
    max_predictions_per_seq: int,
    vocab: VocabInfo,
    rng: random.Random,
    do_whole_word_mask: bool = False,
) -> MaskedLmPredictions:
    """Choose and replace the tokens to predict; positions come back sorted."""
    return MaskedLmPredictions(
        *_mask(list(token_ids), masked_lm_prob, max_predictions_per_seq, vocab, _Draws(rng), do_whole_word_mask)
    )


def _mask(
    tokens: list[int],
    masked_lm_prob: float,
    max_predictions_per_seq: int,
    vocab: VocabInfo,
    draws: _Draws,
    do_whole_word_mask: bool,
    first_sep: int | None = None,
) -> tuple[list[int], list[int], list[int]]:
    """create_masked_lm_predictions on a list; ``first_sep`` as in :func:`_document_instances`."""
    cls_id, sep_id = vocab.cls_id, vocab.sep_id
    num_to_predict = min(max_predictions_per_seq, max(1, int(round(len(tokens) * masked_lm_prob))))
    random_ = draws.random
    output_ids = tokens.copy()
    if not do_whole_word_mask:
        # Every piece is its own candidate word: shuffle plain positions.
        if first_sep is None and (
            tokens.count(cls_id) == 1 and tokens.count(sep_id) == 2 and tokens[0] == cls_id and tokens[-1] == sep_id
        ):
            first_sep = tokens.index(sep_id)
        if first_sep is not None:
            # [CLS] A [SEP] B [SEP] (always, unless the text itself holds
            # those ids): all other positions, in order.
            cand = [*range(1, first_sep), *range(first_sep + 1, len(tokens) - 1)]
        else:
            cand = [i for i, token_id in enumerate(tokens) if token_id != cls_id and token_id != sep_id]
        # Each candidate is one position, so exactly the first
        # num_to_predict of the shuffled list are masked (Google's loop).
        keep = num_to_predict if num_to_predict < len(cand) else len(cand)
        draws.shuffle(cand, keep)
        chosen = cand[:keep]
        mask_id = vocab.mask_id
        for index in chosen:
            if random_() < MASK_PROB:
                output_ids[index] = mask_id
            elif random_() < KEEP_PROB_GIVEN_NOT_MASK:
                pass
            else:
                # Any vocabulary id, special tokens included, as Google draws
                # from the whole vocabulary list.
                output_ids[index] = draws.randint(0, vocab.size - 1)
        chosen.sort()
        return output_ids, chosen, [tokens[index] for index in chosen]

    # Candidate words: lists of positions.
    cand_indexes: list[list[int]] = []
    word_may_continue = False
    is_continuation = vocab.is_continuation
    for i, token_id in enumerate(tokens):
        if token_id == cls_id or token_id == sep_id:
            word_may_continue = False
            continue
        if word_may_continue and is_continuation[token_id]:
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
        word_may_continue = True
    draws.shuffle(cand_indexes, len(cand_indexes))

    masked: list[tuple[int, int]] = []
    for index_set in cand_indexes:
        if len(masked) >= num_to_predict:
            break
        # A whole word that would exceed the budget is skipped (Google).
        if len(masked) + len(index_set) > num_to_predict:
            continue
        # One decision per word (per piece in Google's code; see module doc).
        if random_() < MASK_PROB:
            replacement = "mask"
        elif random_() < KEEP_PROB_GIVEN_NOT_MASK:
            replacement = "keep"
        else:
            replacement = "random"
        for index in index_set:
            if replacement == "mask":
                output_ids[index] = vocab.mask_id
            elif replacement == "random":
                output_ids[index] = draws.randint(0, vocab.size - 1)
            masked.append((index, tokens[index]))
    masked.sort()
    return output_ids, [index for index, _ in masked], [label for _, label in masked]


# An instance before it becomes a TrainingInstance or serialised bytes (a
# plain tuple: cheaper to make than a NamedTuple): input_ids,
# num_segment_a (the tokens of [CLS] A [SEP], segment id 0),
# masked_lm_positions, masked_lm_ids, is_random_next, num_truncated.
_RawInstance = tuple[list[int], int, list[int], list[int], bool, int]


def _to_instance(raw: _RawInstance) -> TrainingInstance:
    input_ids, num_segment_a, positions, labels, is_random_next, num_truncated = raw
    return TrainingInstance(
        input_ids=input_ids,
        segment_ids=[0] * num_segment_a + [1] * (len(input_ids) - num_segment_a),
        masked_lm_positions=positions,
        masked_lm_ids=labels,
        is_random_next=is_random_next,
        num_truncated=num_truncated,
    )


def _has_special_ids(documents: Iterable[Sequence[Sequence[int]]], vocab: VocabInfo) -> bool:
    """Whether any sentence holds the id of [CLS] or [SEP]."""
    cls_id, sep_id = vocab.cls_id, vocab.sep_id
    return any(cls_id in sentence or sep_id in sentence for document in documents for sentence in document)


def create_instances_from_document(
    all_documents: Sequence[Sequence[Sequence[int]]],
    document_index: int,
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
) -> list[TrainingInstance]:
    """The instances of one document (one pass of Google's loop)."""
    return [
        _to_instance(raw) for raw in _document_instances(all_documents, document_index, options, vocab, _Draws(rng))
    ]


def _document_instances(
    all_documents: Sequence[Sequence[Sequence[int]]],
    document_index: int,
    options: InstanceOptions,
    vocab: VocabInfo,
    draws: _Draws,
    text_has_special_ids: bool = True,
) -> list[_RawInstance]:
    """create_instances_from_document, as raw tuples.

    With ``text_has_special_ids`` false (no sentence holds the id of [CLS] or
    [SEP]), masking takes the candidate positions from the layout instead
    of scanning the tokens.
    """
    document = all_documents[document_index]
    # Account for [CLS], [SEP], [SEP].
    max_num_tokens = options.max_seq_length - 3
    random_, randint = draws.random, draws.randint
    cls_id, sep_id = vocab.cls_id, vocab.sep_id

    # Usually fill the whole sequence (padding is wasted compute), sometimes
    # aim shorter to match fine-tuning inputs. A target, not a hard limit.
    target_seq_length = max_num_tokens
    if random_() < options.short_seq_prob:
        target_seq_length = randint(2, max_num_tokens)

    instances = []
    current_chunk: list[Sequence[int]] = []
    current_length = 0
    last = len(document) - 1
    i = 0
    while i <= last:
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == last or current_length >= target_seq_length:
            # (current_chunk is never empty here.)
            # How many sentences of the chunk go into segment A.
            chunk_size = len(current_chunk)
            a_end = 1
            if chunk_size >= 2:
                a_end = randint(1, chunk_size - 1)
            tokens_a: list[int] = []
            for j in range(a_end):
                tokens_a += current_chunk[j]

            tokens_b: list[int] = []
            if chunk_size == 1 or random_() < 0.5:
                is_random_next = True
                target_b_length = target_seq_length - len(tokens_a)
                # Try to take B from another document (rarely needs a
                # second try on a real corpus).
                for _ in range(10):
                    random_document_index = randint(0, len(all_documents) - 1)
                    if random_document_index != document_index:
                        break
                random_document = all_documents[random_document_index]
                random_start = randint(0, len(random_document) - 1)
                for j in range(random_start, len(random_document)):
                    tokens_b += random_document[j]
                    if len(tokens_b) >= target_b_length:
                        break
                # The chunk's sentences after A were not used: put them
                # back so they start the next chunk.
                i -= chunk_size - a_end
            else:
                is_random_next = False
                for j in range(a_end, chunk_size):
                    tokens_b += current_chunk[j]
            num_truncated = 0
            if len(tokens_a) + len(tokens_b) > max_num_tokens:
                num_truncated = truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, draws.rng)
            assert tokens_a and tokens_b

            tokens = [cls_id, *tokens_a, sep_id, *tokens_b, sep_id]
            output_ids, positions, labels = _mask(
                tokens,
                options.masked_lm_prob,
                options.max_predictions_per_seq,
                vocab,
                draws,
                options.do_whole_word_mask,
                None if text_has_special_ids else len(tokens_a) + 1,
            )
            instances.append((output_ids, len(tokens_a) + 2, positions, labels, is_random_next, num_truncated))
            current_chunk = []
            current_length = 0
        i += 1
    return instances


def create_training_instances(
    documents: Iterable[Sequence[Sequence[int]]],
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
    encode: Callable[[TrainingInstance], object] | None = None,
    on_document: Callable[[], None] | None = None,
) -> list:
    """All instances of a set of documents, shuffled (Google's outer loop).

    ``encode`` maps each instance as soon as it is made (e.g. to serialised
    bytes, which take far less memory than the instance); the shuffle then
    acts on the encoded values, in the same order as Google's. ``on_document``
    is called after each document pass, for progress.
    """
    if encode is None:
        return _create_outputs(documents, options, vocab, rng, _to_instance, on_document)
    return _create_outputs(documents, options, vocab, rng, lambda raw: encode(_to_instance(raw)), on_document)


def _create_outputs(
    documents: Iterable[Sequence[Sequence[int]]],
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
    make: Callable[[_RawInstance], object],
    on_document: Callable[[], None] | None,
) -> list:
    """:func:`create_training_instances` with ``make`` applied to raw instances."""
    if _runs_in_c(rng):
        return _compiled_outputs(documents, options, vocab, rng, on_document, make)[0]
    return _python_outputs(documents, options, vocab, rng, make, on_document)


def _python_outputs(
    documents: Iterable[Sequence[Sequence[int]]],
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
    make: Callable[[_RawInstance], object],
    on_document: Callable[[], None] | None,
) -> list:
    """Google's outer loop over non-empty documents, in Python."""
    all_documents = [document for document in documents if document]  # drop empty documents
    draws = _Draws(rng)
    draws.shuffle(all_documents, len(all_documents))
    special = _has_special_ids(all_documents, vocab)
    outputs: list = []
    for _ in range(options.dupe_factor):
        for document_index in range(len(all_documents)):
            outputs += map(make, _document_instances(all_documents, document_index, options, vocab, draws, special))
            if on_document is not None:
                on_document()
    draws.shuffle(outputs, len(outputs))
    return outputs


def _compiled_outputs(
    documents: Iterable[Sequence[Sequence[int]]],
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
    on_document: Callable[[], None] | None,
    make: Callable[[_RawInstance], object] | None,
) -> tuple[list, object]:
    """:func:`_python_outputs` in C, and the C corpus (for its counts).

    ``make`` None gives serialised Examples made in C. The draws come from a
    copy of ``rng``'s state, written back at the end as if ``rng`` had made them.
    """
    all_documents = [document for document in documents if document]  # drop empty documents
    version, state, gauss_next = rng.getstate()
    twister = compiled.Twister(state)
    try:
        twister.shuffle(all_documents)
        corpus = compiled.Corpus(
            all_documents,
            options.max_seq_length,
            options.max_predictions_per_seq,
            options.masked_lm_prob,
            options.short_seq_prob,
            options.do_whole_word_mask,
            vocab.cls_id,
            vocab.sep_id,
            vocab.mask_id,
            vocab.size,
            bytes(vocab.is_continuation),
        )
        if make is None:
            document_outputs = corpus.document_examples
        else:

            def document_outputs(twister, document_index):
                return map(make, corpus.document_instances(twister, document_index))

        outputs: list = []
        for _ in range(options.dupe_factor):
            for document_index in range(len(all_documents)):
                outputs += document_outputs(twister, document_index)
                if on_document is not None:
                    on_document()
        twister.shuffle(outputs)
    finally:
        rng.setstate((version, twister.state(), gauss_next))
    return outputs, corpus


# --------------------------------------------------------------------------
# Reading and tokenising a shard
# --------------------------------------------------------------------------


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
        sentences = tokens = unknown = empty = longer = 0
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
        stats.sentences += sentences
        stats.tokens += tokens
        stats.unknown_tokens += unknown
        stats.sentences_without_tokens += empty
        stats.sentences_longer_than_sequence += longer
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


# --------------------------------------------------------------------------
# Serialised examples and their counts
# --------------------------------------------------------------------------


@dataclass
class InstanceCounts:
    """What the records stats count over all instances of a shard."""

    by_length: list[int]  # [n]: instances of n tokens
    by_masked_positions: list[int]  # [n]: instances with n masked positions
    random_next: int = 0
    instances_truncated: int = 0
    tokens_truncated: int = 0


def histogram(counts: list[int]) -> dict[str, int]:
    """``{"n": count}`` for the non-zero counts, as the stats file has them."""
    return {str(n): count for n, count in enumerate(counts) if count}


def serialized_examples(
    documents: Iterable[Sequence[Sequence[int]]],
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
    on_document: Callable[[], None] | None = None,
) -> tuple[list[bytes], InstanceCounts]:
    """All instances as serialised ``tf.train.Example`` s, in Google's final order.

    Made in C when :mod:`._fast_instances` is built (and ``rng`` is a plain
    ``random.Random``), else in Python; both give the same bytes and counts.
    """
    if _runs_in_c(rng):
        examples, corpus = _compiled_outputs(documents, options, vocab, rng, on_document, make=None)
        by_length, by_masked_positions, *totals = corpus.counts()
        return examples, InstanceCounts(by_length, by_masked_positions, *totals)

    counts = InstanceCounts([0] * (options.max_seq_length + 1), [0] * (options.max_predictions_per_seq + 1))
    if vocab.size <= VARINT_TABLE_SIZE:
        serializer = pretraining_example_serializer(options.max_seq_length, options.max_predictions_per_seq)
        serialize_pair = serializer.serialize_pair
    else:  # ids beyond the varint table: the checked, general path

        def serialize_pair(input_ids, num_segment_a, positions, labels, label):
            segment_ids = [0] * num_segment_a + [1] * (len(input_ids) - num_segment_a)
            return serialize_pretraining_example(
                input_ids, segment_ids, positions, labels, label,
                options.max_seq_length, options.max_predictions_per_seq,
            )

    by_length, by_masked_positions = counts.by_length, counts.by_masked_positions

    def encode(raw: _RawInstance) -> bytes:
        input_ids, num_segment_a, positions, labels, is_random_next, num_truncated = raw
        by_length[len(input_ids)] += 1
        by_masked_positions[len(positions)] += 1
        if is_random_next:
            counts.random_next += 1
        if num_truncated:
            counts.instances_truncated += 1
            counts.tokens_truncated += num_truncated
        return serialize_pair(input_ids, num_segment_a, positions, labels, 1 if is_random_next else 0)

    return _python_outputs(documents, options, vocab, rng, encode, on_document), counts


# --------------------------------------------------------------------------
# One shard: text -> TFRecords (+ stats)
# --------------------------------------------------------------------------


def create_pretraining_data(
    input_files: list[str],
    output_files: list[str],
    vocab_file: str,
    options: InstanceOptions,
    do_lower_case: bool,
    random_seed: int,
    stats_file: str | None = None,
) -> dict:
    """Google's create_pretraining_data.py main, without TensorFlow.

    Instances are written round-robin over ``output_files`` like Google's.
    All outputs (and ``stats_file``) appear only when complete; a failing run
    leaves existing files untouched. Same inputs, flags and seed give
    byte-identical records. Returns the stats (also written to ``stats_file``).
    """
    check_instance_options(options)
    if compiled is None:
        log.warning(
            "bert_pretraining._fast_instances is not built (no C compiler at install time?): "
            "building instances in Python, about 2x slower; `pip install -e .` with gcc builds it"
        )
    if not input_files:
        raise ConfigError("--input_file is empty; expected one or more corpus files or patterns")
    if not output_files:
        raise ConfigError("--output_file is empty; expected one or more output paths")
    if len(set(output_files)) != len(output_files):
        raise ConfigError(f"--output_file names a file twice ({','.join(output_files)}); expected distinct files")
    for path in input_files:
        if os.path.getsize(path) == 0:
            raise CorpusError(f"{path}: the input file is empty; expected one sentence per line")

    tokens = read_vocabulary(vocab_file)
    warning = case_mismatch_warning(tokens, do_lower_case)
    if warning:
        log.warning("%s: %s", vocab_file, warning)
    vocab = VocabInfo.from_tokens(tokens)
    tokenizer = tokenizer_from_vocab({token: index for index, token in enumerate(tokens)}, do_lower_case)
    label = os.path.splitext(os.path.basename(output_files[0]))[0]

    max_num_tokens = options.max_seq_length - 3
    documents, text = read_tokenized_documents(
        input_files, tokenizer, tokens.index("[UNK]"), max_num_tokens, label=f"tokenize {label}"
    )
    if not documents:
        raise CorpusError(
            f"{', '.join(input_files)}: no sentence gives any token; expected text in BERT's format"
        )
    log.info(
        "%d documents, %d sentences, %d tokens (%d [UNK]); %d single-sentence documents kept "
        "(their next segment is always random); %d sentences longer than %d tokens will be truncated",
        text.documents,
        text.sentences,
        text.tokens,
        text.unknown_tokens,
        text.single_sentence_documents,
        text.sentences_longer_than_sequence,
        max_num_tokens,
    )

    rng = random.Random(random_seed)
    with Progress(
        f"records {label}", total=options.dupe_factor * len(documents), unit="documents", rate_unit="docs"
    ) as progress:
        examples, counts = serialized_examples(documents, options, vocab, rng, lambda: progress.update(1))
    del documents

    writers = [TFRecordWriter(path) for path in output_files]
    outputs: list = list(writers)
    try:
        if len(writers) == 1:
            writers[0].write_many(examples)
        else:
            for number, example in enumerate(examples):
                writers[number % len(writers)].write(example)
        for writer in writers:
            writer.close()
        stats = {
            "num_instances": len(examples),
            "files": [
                {"file": os.path.basename(path), "num_instances": writer.count}
                for path, writer in zip(output_files, writers)
            ],
            "input_files": list(input_files),
            "vocab_file": vocab_file,
            "vocab_sha256": vocab_sha256(vocab_file),
            "vocab_size": vocab.size,
            **asdict(options),
            "do_lower_case": do_lower_case,
            "random_seed": random_seed,
            "documents": text.documents,
            "sentences": text.sentences,
            "tokens": text.tokens,
            "unknown_tokens": text.unknown_tokens,
            "sentences_without_tokens": text.sentences_without_tokens,
            "single_sentence_documents": {"kept": text.single_sentence_documents, "skipped": 0},
            "sentences_longer_than_sequence": text.sentences_longer_than_sequence,
            "instances_truncated": counts.instances_truncated,
            "tokens_truncated": counts.tokens_truncated,
            "random_next_instances": counts.random_next,
            "masked_positions_histogram": histogram(counts.by_masked_positions),
            "sequence_length_histogram": histogram(counts.by_length),
        }
        if stats_file:
            stats_output = AtomicFile(stats_file, "w")
            outputs.append(stats_output)
            stats_output.write(json.dumps(stats, indent=2) + "\n")
            stats_output.close()
        # Everything is complete on disk: only now take the final names.
        for output in outputs:
            output.commit()
    except BaseException:
        for output in outputs:
            output.discard()  # a no-op for any already committed
        raise
    log.info(
        "wrote %d instances to %s (%d truncated, %d random next)",
        len(examples),
        ", ".join(output_files),
        counts.instances_truncated,
        counts.random_next,
    )
    return stats
