"""Small pretraining records for training tests, written with the project's own serialiser and writer."""

import os
import random

from bert_pretraining.records_sidecar import write_records_sidecar
from bert_pretraining.tfrecords import ExampleSerializer, TFRecordWriter

VOCAB_SIZE = 64


def serialize_pretraining_example(input_ids, segment_ids, masked_lm_positions, masked_lm_ids, next_sentence_label,
                                  max_seq_length, max_predictions_per_seq):
    """One Example in Google's layout (the records stage's serialiser, for one shape)."""
    return ExampleSerializer(max_seq_length, max_predictions_per_seq).serialize(
        input_ids, segment_ids, masked_lm_positions, masked_lm_ids, next_sentence_label)


def write_records(path, records):
    """Write serialised records to a TFRecord file atomically; returns the count."""
    return write_records_entry(path, records)["num_instances"]


def write_records_entry(path, records):
    """Write serialised records to a TFRecord file; returns its records.json entry (count, size, sha256)."""
    with TFRecordWriter(path) as writer:
        writer.write_many(records)
    return {"file": os.path.basename(path), "num_instances": writer.count, "bytes": writer.bytes, "sha256": writer.sha256}


def make_records(directory, *, files=2, per_file=40, max_seq_length=32, max_predictions_per_seq=5, seed=0):
    """Learnable toy data: segment B repeats segment A's pattern unless it is a random next."""
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(seed)
    serializer = ExampleSerializer(max_seq_length, max_predictions_per_seq)
    entries = []
    for index in range(files):
        examples = []
        for _ in range(per_file):
            length = rng.randint(12, max_seq_length)
            half = (length - 3) // 2
            a = [rng.randint(5, VOCAB_SIZE - 1) for _ in range(half)]
            is_random = rng.random() < 0.5
            b = [rng.randint(5, VOCAB_SIZE - 1) for _ in range(half)] if is_random else list(a)
            tokens = [2, *a, 3, *b, 3]
            segments = [0] * (half + 2) + [1] * (half + 1)
            candidates = [i for i, t in enumerate(tokens) if t not in (2, 3)]
            positions = sorted(rng.sample(candidates, min(max_predictions_per_seq, len(candidates))))
            labels = [tokens[p] for p in positions]
            for p in positions:
                tokens[p] = 4
            examples.append(serializer.serialize(tokens, segments, positions, labels, int(is_random)))
        entries.append(write_records_entry(os.path.join(directory, f"shard_{index:05d}.tfrecord"), examples))
    write_records_sidecar(
        os.path.join(directory, "records.json"),
        files=entries,
        max_seq_length=max_seq_length,
        max_predictions_per_seq=max_predictions_per_seq,
        vocab_sha256="0" * 64,
        masked_lm_prob=0.15,
        dupe_factor=1,
        short_seq_prob=0.1,
        do_whole_word_mask=False,
        do_lower_case=False,
        random_seed=seed,
    )
    return [os.path.join(directory, entry["file"]) for entry in entries]
