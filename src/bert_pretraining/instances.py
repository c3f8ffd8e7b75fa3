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

A readable transcription of Google's functions, each a pure function of its
inputs and an explicit ``random.Random`` (whose methods it calls exactly as
Google's code does). It is the definition of the records: the C accelerator
``_fast_instances.c`` must give the same instances from the same generator
state (the tests compare them), and it is the fallback when the accelerator
is not built (see :mod:`.pretraining_examples`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from .errors import ConfigError

# Probabilities of the replacement of a chosen token (Google's constants).
MASK_PROB = 0.8
KEEP_PROB_GIVEN_NOT_MASK = 0.5

MIN_SEQ_LENGTH = 8


@dataclass(frozen=True)
class InstanceOptions:
    """The flags of Google's script that shape instances."""

    max_seq_length: int
    max_predictions_per_seq: int
    masked_lm_prob: float
    short_seq_prob: float
    dupe_factor: int
    do_whole_word_mask: bool

    @classmethod
    def with_google_defaults(cls, **values) -> "InstanceOptions":
        """Google's create_pretraining_data.py defaults (job_flags.HAND_DEFAULTS) for what ``values`` leaves out."""
        from .job_flags import HAND_DEFAULTS

        defaults = {field: HAND_DEFAULTS["records"][field] for field in cls.__dataclass_fields__}
        return cls(**{**defaults, **values})


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


def create_training_instances(
    documents: Iterable[Sequence[Sequence[int]]],
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
    encode: Callable[[TrainingInstance], object] | None = None,
    on_document: Callable[[], None] | None = None,
) -> list:
    """All instances of a set of documents, shuffled (Google's outer loop).

    ``encode`` maps each instance as soon as it is made (to serialised bytes,
    which take far less memory than the instance); the shuffle then acts on
    the encoded values, in the same order. ``on_document`` is called after
    each document pass, for progress.
    """
    all_documents = [document for document in documents if document]  # drop empty documents
    rng.shuffle(all_documents)
    outputs: list = []
    for _ in range(options.dupe_factor):
        for document_index in range(len(all_documents)):
            instances = create_instances_from_document(all_documents, document_index, options, vocab, rng)
            outputs.extend(instances if encode is None else map(encode, instances))
            if on_document is not None:
                on_document()
    rng.shuffle(outputs)
    return outputs


def create_instances_from_document(
    all_documents: Sequence[Sequence[Sequence[int]]],
    document_index: int,
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
) -> list[TrainingInstance]:
    """The instances of one document (one pass of Google's loop)."""
    document = all_documents[document_index]
    # Account for [CLS], [SEP], [SEP].
    max_num_tokens = options.max_seq_length - 3

    # Usually fill the whole sequence (padding is wasted compute), sometimes
    # aim shorter to match fine-tuning inputs. A target, not a hard limit.
    target_seq_length = max_num_tokens
    if rng.random() < options.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)

    instances = []
    current_chunk: list[Sequence[int]] = []
    current_length = 0
    i = 0
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if current_chunk:
                # How many sentences of the chunk go into segment A.
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a: list[int] = []
                for j in range(a_end):
                    tokens_a.extend(current_chunk[j])

                tokens_b: list[int] = []
                if len(current_chunk) == 1 or rng.random() < 0.5:
                    is_random_next = True
                    target_b_length = target_seq_length - len(tokens_a)
                    # Try to take B from another document (rarely needs a
                    # second try on a real corpus).
                    for _ in range(10):
                        random_document_index = rng.randint(0, len(all_documents) - 1)
                        if random_document_index != document_index:
                            break
                    random_document = all_documents[random_document_index]
                    random_start = rng.randint(0, len(random_document) - 1)
                    for j in range(random_start, len(random_document)):
                        tokens_b.extend(random_document[j])
                        if len(tokens_b) >= target_b_length:
                            break
                    # The chunk's sentences after A were not used: put them
                    # back so they start the next chunk.
                    num_unused_segments = len(current_chunk) - a_end
                    i -= num_unused_segments
                else:
                    is_random_next = False
                    for j in range(a_end, len(current_chunk)):
                        tokens_b.extend(current_chunk[j])
                num_truncated = truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                assert tokens_a and tokens_b

                tokens = [vocab.cls_id, *tokens_a, vocab.sep_id, *tokens_b, vocab.sep_id]
                segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
                output_ids, positions, labels = create_masked_lm_predictions(
                    tokens,
                    options.masked_lm_prob,
                    options.max_predictions_per_seq,
                    vocab,
                    rng,
                    options.do_whole_word_mask,
                )
                instances.append(
                    TrainingInstance(
                        input_ids=output_ids,
                        segment_ids=segment_ids,
                        masked_lm_positions=positions,
                        masked_lm_ids=labels,
                        is_random_next=is_random_next,
                        num_truncated=num_truncated,
                    )
                )
            current_chunk = []
            current_length = 0
        i += 1
    return instances


def create_masked_lm_predictions(
    token_ids: Sequence[int],
    masked_lm_prob: float,
    max_predictions_per_seq: int,
    vocab: VocabInfo,
    rng: random.Random,
    do_whole_word_mask: bool = False,
) -> tuple[list[int], list[int], list[int]]:
    """Choose and replace the tokens to predict: (output ids, positions, original ids), positions sorted."""
    # Candidate "words": lists of positions. Without whole-word masking every
    # piece is its own word.
    cls_id, sep_id = vocab.cls_id, vocab.sep_id
    if not do_whole_word_mask:
        cand_indexes = [[i] for i, token_id in enumerate(token_ids) if token_id != cls_id and token_id != sep_id]
    else:
        cand_indexes = []
        word_may_continue = False
        for i, token_id in enumerate(token_ids):
            if token_id == cls_id or token_id == sep_id:
                word_may_continue = False
                continue
            if word_may_continue and vocab.is_continuation[token_id]:
                cand_indexes[-1].append(i)
            else:
                cand_indexes.append([i])
            word_may_continue = True

    rng.shuffle(cand_indexes)
    output_ids = list(token_ids)
    num_to_predict = min(max_predictions_per_seq, max(1, int(round(len(token_ids) * masked_lm_prob))))

    masked: list[tuple[int, int]] = []
    for index_set in cand_indexes:
        if len(masked) >= num_to_predict:
            break
        # A whole word that would exceed the budget is skipped (Google).
        if len(masked) + len(index_set) > num_to_predict:
            continue
        # One decision per word (per piece in Google's code; see module doc).
        if rng.random() < MASK_PROB:
            replacement = "mask"
        elif rng.random() < KEEP_PROB_GIVEN_NOT_MASK:
            replacement = "keep"
        else:
            replacement = "random"
        for index in index_set:
            if replacement == "mask":
                output_ids[index] = vocab.mask_id
            elif replacement == "random":
                # Any vocabulary id, special tokens included, as Google draws
                # from the whole vocabulary list.
                output_ids[index] = rng.randint(0, vocab.size - 1)
            masked.append((index, token_ids[index]))
    masked.sort()
    return output_ids, [index for index, _ in masked], [label for _, label in masked]


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
