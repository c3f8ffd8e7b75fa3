"""TFRecords written without TensorFlow, read back with TensorFlow (Google's spec); the records sidecar."""

import json
import os
import hashlib
import random

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

from bert_pretraining.errors import RecordsError  # noqa: E402
from bert_pretraining.instances import InstanceOptions  # noqa: E402
from bert_pretraining.pretraining_data import create_pretraining_data  # noqa: E402
from bert_pretraining.records_sidecar import (  # noqa: E402
    check_records_sidecar,
    read_records_sidecar,
    summarize_records_stats,
    write_records_sidecar,
)
from bert_pretraining.tfrecords import ExampleSerializer, TFRecordWriter, feature_spec  # noqa: E402
from bert_pretraining.tokenization import read_vocabulary, train_vocabulary, vocab_sha256  # noqa: E402
from records_reader import iter_records, parse_example, read_examples  # noqa: E402
from synthetic_records import write_records  # noqa: E402

MAX_SEQ_LENGTH = 64
MAX_PREDICTIONS = 10

WORDS = (
    "the group said net sales rose in the third quarter while operating profit fell ; "
    "analysts expect the central bank to raise rates , shares of Nokia gained 2 % in Helsinki"
).split()


def googles_spec(max_seq_length, max_predictions_per_seq):
    """The name_to_features of Google's run_pretraining.py input_fn_builder."""
    return {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "masked_lm_positions": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_ids": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Records of a corpus of long documents, with their vocabulary and stats."""
    directory = tmp_path_factory.mktemp("records")
    rng = random.Random(0)
    corpus = directory / "shard_00000.txt"
    with open(corpus, "w", encoding="utf-8") as out:
        for _ in range(60):
            for _ in range(rng.randint(10, 25)):
                out.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + "\n")
            out.write("\n")
    vocab = directory / "vocab.txt"
    train_vocabulary([str(corpus)], str(vocab), vocab_size=150, min_frequency=1)
    path = directory / "shard_00000.tfrecord"
    options = InstanceOptions.with_google_defaults(max_seq_length=MAX_SEQ_LENGTH, max_predictions_per_seq=MAX_PREDICTIONS, dupe_factor=3)
    stats = create_pretraining_data([str(corpus)], [str(path)], str(vocab), options, do_lower_case=False,
                                    random_seed=1, stats_file=str(directory / "shard_00000.json"))
    return path, vocab, stats


def test_every_example_parses_with_googles_spec_and_keeps_the_invariants(records):
    path, vocab, stats = records
    tokens = read_vocabulary(str(vocab))
    cls_id, sep_id = tokens.index("[CLS]"), tokens.index("[SEP]")
    spec = googles_spec(MAX_SEQ_LENGTH, MAX_PREDICTIONS)
    dataset = tf.data.TFRecordDataset(str(path)).map(lambda record: tf.io.parse_single_example(record, spec))
    count = random_next = 0
    for parsed, ours in zip(dataset, read_examples(str(path))):
        example = {name: value.numpy().tolist() for name, value in parsed.items()}
        assert example == {name: list(values) for name, values in ours.items()}
        ids, mask, segments = example["input_ids"], example["input_mask"], example["segment_ids"]
        n = sum(mask)
        assert mask == [1] * n + [0] * (MAX_SEQ_LENGTH - n)
        weights = example["masked_lm_weights"]
        k = int(sum(weights))
        assert weights == [1.0] * k + [0.0] * (MAX_PREDICTIONS - k)
        assert k == min(MAX_PREDICTIONS, max(1, int(round(n * 0.15))))  # the mask rate
        positions = example["masked_lm_positions"][:k]
        # The text before masking (a random replacement may be any id, even
        # [SEP], as in Google's code).
        original = list(ids)
        for position, label in zip(positions, example["masked_lm_ids"]):
            original[position] = label
        assert original[0] == cls_id and original[n - 1] == sep_id and all(i == 0 for i in ids[n:])
        first_sep = original.index(sep_id)
        assert 1 < first_sep < n - 2 and original[first_sep + 1 : n - 1].count(sep_id) == 0
        assert segments == [0] * (first_sep + 1) + [1] * (n - first_sep - 1) + [0] * (MAX_SEQ_LENGTH - n)
        assert positions == sorted(set(positions)) and all(0 < p < n and p != first_sep for p in positions)
        assert example["masked_lm_positions"][k:] == [0] * (MAX_PREDICTIONS - k)
        assert example["masked_lm_ids"][k:] == [0] * (MAX_PREDICTIONS - k)
        assert all(i not in (cls_id, sep_id) for i in example["masked_lm_ids"][:k])
        assert example["next_sentence_labels"] in ([0], [1])
        random_next += example["next_sentence_labels"][0]
        count += 1
    assert count == stats["num_instances"] > 400
    assert random_next == stats["random_next_instances"]
    assert 0.4 < random_next / count < 0.6


def test_feature_spec_matches_googles():
    spec = feature_spec(128, 20)
    google = googles_spec(128, 20)
    assert list(spec) == list(google)
    for name, (length, dtype) in spec.items():
        assert google[name].shape == [length] and google[name].dtype == getattr(tf, dtype)


def serializer_cases():
    """Random examples of several shapes: ids of 1-3 varint bytes and beyond the lookup table,
    positions of 1 and 2 bytes."""
    rng = random.Random(2024)
    for case in range(300):
        max_seq_length = rng.choice([8, 64, 128, 129, 200, 512])
        max_predictions = rng.randint(1, 30)
        length = rng.randint(5, max_seq_length)
        num_segment_a = rng.randint(2, length - 1)
        big = 250_000 if case % 3 == 0 else 30_000
        input_ids = [rng.randint(0, big) for _ in range(length)]
        segment_ids = [0] * num_segment_a + [1] * (length - num_segment_a)
        positions = sorted(rng.sample(range(length), min(rng.randint(0, max_predictions), length)))
        labels = [rng.randint(0, big) for _ in positions]
        yield input_ids, segment_ids, positions, labels, rng.randint(0, 1), max_seq_length, max_predictions


def test_examples_are_the_protobufs_of_googles_features():
    for input_ids, segment_ids, positions, labels, label, seq, pred in serializer_cases():
        data = ExampleSerializer(seq, pred).serialize(input_ids, segment_ids, positions, labels, label)
        example = tf.train.Example.FromString(data)
        # Packed, nothing extra: the size protobuf computes for the message.
        assert len(data) == example.ByteSize()
        seq_padding, pred_padding = [0] * (seq - len(input_ids)), [0] * (pred - len(positions))
        expected = {
            "input_ids": input_ids + seq_padding,
            "input_mask": [1] * len(input_ids) + seq_padding,
            "segment_ids": segment_ids + seq_padding,
            "masked_lm_positions": positions + pred_padding,
            "masked_lm_ids": labels + pred_padding,
            "masked_lm_weights": [1.0] * len(positions) + [0.0] * len(pred_padding),
            "next_sentence_labels": [label],
        }
        features = example.features.feature
        assert sorted(features) == sorted(expected)
        for name, values in expected.items():
            kind = "float_list" if name == "masked_lm_weights" else "int64_list"
            assert list(getattr(features[name], kind).value) == values, name
        decoded = parse_example(data)
        assert decoded == expected == parse_example(example.SerializeToString())
        assert list(decoded) == list(expected)  # on the wire in Google's order


def test_example_bytes_are_unchanged():
    # The sha256 of serializer_cases() as the records stage wrote them before
    # the serialisers were merged into one: records stay byte-identical.
    digest = hashlib.sha256()
    for *fields, seq, pred in serializer_cases():
        digest.update(ExampleSerializer(seq, pred).serialize(*fields))
    assert digest.hexdigest() == "7f995ea3adfb3fa02d2595e89d600be4be5d7fd5b1c428e6f1a3be79b005e2b9"


def test_framing_is_compatible_both_ways(tmp_path):
    ours, theirs = tmp_path / "ours.tfrecord", tmp_path / "theirs.tfrecord"
    payloads = [b"", b"x", os.urandom(1000)]
    assert write_records(str(ours), payloads) == 3
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(ours))] == payloads
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for payload in payloads:
            writer.write(payload)
    assert list(iter_records(str(theirs))) == payloads
    assert ours.read_bytes() == theirs.read_bytes()


def test_corrupt_records_are_reported(tmp_path):
    path = tmp_path / "r.tfrecord"
    write_records(str(path), [b"hello", b"world"])
    data = bytearray(path.read_bytes())
    data[12 + 16 + 12] ^= 0xFF  # a byte of the second record's data
    path.write_bytes(bytes(data))
    with pytest.raises(RecordsError, match=r"r\.tfrecord: corrupt record data at byte 21"):
        list(iter_records(str(path)))
    path.write_bytes(bytes(data[:30]))
    with pytest.raises(RecordsError, match="truncated"):
        list(iter_records(str(path)))


# --- the sidecar ----------------------------------------------------------------------


def sidecar_fields(vocab_sha="0" * 64, **overrides):
    fields = dict(
        files=[{"file": "shard_00000.tfrecord", "num_instances": 7}, {"file": "shard_00001.tfrecord", "num_instances": 5}],
        max_seq_length=128, max_predictions_per_seq=20, vocab_sha256=vocab_sha, masked_lm_prob=0.15,
        dupe_factor=5, short_seq_prob=0.1, do_whole_word_mask=False, do_lower_case=False, random_seed=12345,
        heldout={"file": "heldout.tfrecord", "num_instances": 2},
    )
    fields.update(overrides)
    return fields


def test_sidecar_round_trip_and_checks(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    directory = tmp_path / "seq128"
    sidecar = directory / "records.json"
    content = write_records_sidecar(str(sidecar), **sidecar_fields(vocab_sha256(str(vocab))))
    assert content["num_instances"] == 12
    assert read_records_sidecar(str(sidecar)) == content
    for name in ("shard_00000.tfrecord", "shard_00001.tfrecord", "heldout.tfrecord"):
        (directory / name).write_bytes(b"")
    assert check_records_sidecar(str(sidecar), max_seq_length=128, max_predictions_per_seq=20,
                                 vocab_path=str(vocab)) == content

    with pytest.raises(RecordsError) as error:
        check_records_sidecar(str(sidecar), max_seq_length=512, max_predictions_per_seq=20)
    assert str(error.value) == (
        f"{sidecar}: max_seq_length is 128 but training is configured with max_seq_length 512; "
        "records must be generated with the same value (set in create_pretraining_data)"
    )
    with pytest.raises(RecordsError, match="max_predictions_per_seq is 20 but training is configured with max_predictions_per_seq 80"):
        check_records_sidecar(str(sidecar), max_seq_length=128, max_predictions_per_seq=80)
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nnew\n")
    with pytest.raises(RecordsError, match=r"records\.json: vocab_sha256 is [0-9a-f]{64} but the vocabulary .*vocab\.txt has sha256"):
        check_records_sidecar(str(sidecar), max_seq_length=128, max_predictions_per_seq=20, vocab_path=str(vocab))
    os.remove(directory / "heldout.tfrecord")
    with pytest.raises(RecordsError, match=r"heldout\.tfrecord does not exist, but records\.json beside it lists it; "
                       "remake the damaged record files with make repair-records"):
        check_records_sidecar(str(sidecar), max_seq_length=128, max_predictions_per_seq=20)
    with pytest.raises(RecordsError, match="records sidecar does not exist"):
        check_records_sidecar(str(tmp_path / "none.json"), max_seq_length=128, max_predictions_per_seq=20)
    sidecar.write_text(json.dumps({"max_seq_length": 128}))
    with pytest.raises(RecordsError, match="lacks the field"):
        read_records_sidecar(str(sidecar))


def test_summary_sums_shards_and_rejects_disagreeing_flags(tmp_path, records):
    _, _, stats = records
    paths = []
    for index, (seed, count) in enumerate([(1, 10), (2, 20)]):
        shard = dict(stats, random_seed=seed, num_instances=count,
                     files=[{"file": f"shard_{index:05d}.tfrecord", "num_instances": count}])
        paths.append(tmp_path / f"shard_{index:05d}.json")
        paths[-1].write_text(json.dumps(shard))
    heldout = tmp_path / "heldout.json"
    heldout.write_text(json.dumps(dict(stats, dupe_factor=1, files=[{"file": "heldout.tfrecord", "num_instances": 3}])))
    fields = summarize_records_stats([str(p) for p in paths], str(heldout))
    content = write_records_sidecar(str(tmp_path / "records.json"), **fields)
    assert content["num_instances"] == 30
    assert [f["random_seed"] for f in content["files"]] == [1, 2]
    assert content["heldout"]["num_instances"] == 3 and content["dupe_factor"] == stats["dupe_factor"]

    paths[1].write_text(json.dumps(dict(json.loads(paths[1].read_text()), max_seq_length=512)))
    with pytest.raises(RecordsError, match=r"shard_00001\.json: max_seq_length is 512 but .*shard_00000\.json has 64"):
        summarize_records_stats([str(p) for p in paths])


def test_serialiser_rejects_bad_values():
    serializer = ExampleSerializer(8, 2)
    with pytest.raises(ValueError, match="segment ids"):
        serializer.serialize([5, 6], [0, 2], [1], [6], 0)
    with pytest.raises(ValueError, match="masked positions"):
        serializer.serialize([5, 6], [0, 1], [0, 1, 1], [6, 6, 6], 0)
    # Negative values are not table lookups (a negative index would wrap).
    assert parse_example(serializer.serialize([-1, 6], [0, 1], [1], [-3], 1))["input_ids"][:2] == [-1, 6]


def test_batched_writing_frames_records_like_write(tmp_path):
    payloads = [os.urandom(n) for n in (0, 1, 127, 128, 700, 5000)] * 700
    one, many = tmp_path / "one.tfrecord", tmp_path / "many.tfrecord"
    with TFRecordWriter(str(one)) as writer:
        for payload in payloads:
            writer.write(payload)
    with TFRecordWriter(str(many)) as writer:
        writer.write_many(iter(payloads), batch=100)
    assert writer.count == len(payloads)
    assert one.read_bytes() == many.read_bytes()
    assert list(iter_records(str(many))) == payloads


def test_varint_table_is_the_varint_encoding():
    from bert_pretraining.tfrecords import _varint, _varint_table

    table = _varint_table()
    assert len(table) == 2**17
    assert all(table[value] == _varint(value) for value in range(2**17))
