"""All serialised Examples of a shard, in Google's final order, and their counts.

Made by the C accelerator (``_fast_instances.c``) when it is built, else by
the transcription of Google's algorithm in :mod:`.instances` and
:class:`.tfrecords.ExampleSerializer`: the same bytes and counts either way
(the tests compare them), the accelerator several times faster.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from .instances import InstanceOptions, TrainingInstance, VocabInfo, create_training_instances
from .tfrecords import ExampleSerializer

try:  # built by setup.py when a C compiler is available
    from . import _fast_instances as compiled
except ImportError:
    compiled = None


@dataclass
class InstanceCounts:
    """What the records stats count over all instances of a shard."""

    by_length: list[int]  # [n]: instances of n tokens
    by_masked_positions: list[int]  # [n]: instances with n masked positions
    random_next: int
    instances_truncated: int
    tokens_truncated: int


# An instance's shape, as both paths record it: four native ints (sequence
# length, masked positions, is random next, tokens truncated), appended to a
# bytearray: compact, and counted at the end in one place.
_pack_shape = struct.Struct("=4i").pack


def serialized_examples(
    documents: Iterable[Sequence[Sequence[int]]],
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
    on_document: Callable[[], None] | None = None,
) -> tuple[list[bytes], InstanceCounts]:
    """Google's create_training_instances, each instance as its serialised Example.

    ``on_document`` is called after each document pass, for progress. ``rng``
    is left where Google's code would leave it.
    """
    shapes = bytearray()
    # The accelerator copies the state of a plain random.Random; a subclass
    # may draw differently, so it gets its own methods called.
    if compiled is not None and type(rng) is random.Random:
        examples = _compiled_examples(documents, options, vocab, rng, shapes, on_document)
    else:
        serializer = ExampleSerializer(options.max_seq_length, options.max_predictions_per_seq)

        def encode(instance: TrainingInstance) -> bytes:
            shapes.extend(_pack_shape(len(instance.input_ids), len(instance.masked_lm_positions),
                                      instance.is_random_next, instance.num_truncated))
            return serializer.serialize(instance.input_ids, instance.segment_ids, instance.masked_lm_positions,
                                        instance.masked_lm_ids, int(instance.is_random_next))

        examples = create_training_instances(documents, options, vocab, rng, encode, on_document)
    return examples, count_instances(shapes, options)


def _compiled_examples(
    documents: Iterable[Sequence[Sequence[int]]],
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
    shapes: bytearray,
    on_document: Callable[[], None] | None,
) -> list[bytes]:
    """create_training_instances's loop around the accelerator's document passes.

    The draws come from a copy of ``rng``'s state, written back at the end as
    if ``rng`` had made them.
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
        examples: list[bytes] = []
        for _ in range(options.dupe_factor):
            for document_index in range(len(all_documents)):
                examples += corpus.document_examples(twister, document_index, shapes)
                if on_document is not None:
                    on_document()
        twister.shuffle(examples)
    finally:
        rng.setstate((version, twister.state(), gauss_next))
    return examples


def count_instances(shapes: bytes, options: InstanceOptions) -> InstanceCounts:
    """The counts of the instances whose shapes ``shapes`` holds."""
    values = memoryview(shapes).cast("i")
    lengths, masked, random_next, truncated = (values[field::4] for field in range(4))
    by_length = [0] * (options.max_seq_length + 1)
    for length, count in Counter(lengths).items():
        by_length[length] = count
    by_masked_positions = [0] * (options.max_predictions_per_seq + 1)
    for number, count in Counter(masked).items():
        by_masked_positions[number] = count
    return InstanceCounts(
        by_length=by_length,
        by_masked_positions=by_masked_positions,
        random_next=sum(random_next),
        instances_truncated=len(truncated) - Counter(truncated)[0],
        tokens_truncated=sum(truncated),
    )
