"""The held-out evaluation: the baseline of the most frequent masked token, and the accuracy at [MASK] inputs."""

import collections
import random

import numpy as np

from bert_pretraining import checkpoints
from bert_pretraining.evaluation import evaluate_checkpoint, most_frequent_masked_token
from bert_pretraining.metrics import EVALUATION, names_shown_in
from bert_pretraining.modeling import BertConfig, BertPretrainer
from synthetic_records import serialize_pretraining_example, write_records

MASK, VOCAB = 4, 50
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[f"t{index}" for index in range(5, VOCAB)]]
CONFIG = BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=32)


def write_instances(path, rng, count, *, frequent):
    """Instances with fewer predictions than slots (padding ids 0 weigh nothing); ``frequent`` is asked for most.

    Returns each real prediction as (label, input token at its position).
    """
    predictions, examples = [], []
    for _ in range(count):
        tokens = [2, *[rng.randint(5, VOCAB - 1) for _ in range(10)], 3, *[rng.randint(5, VOCAB - 1) for _ in range(8)], 3]
        positions = sorted(rng.sample(range(1, 11), rng.randint(1, 3)))
        labels = [frequent if rng.random() < 0.4 else rng.randint(5, VOCAB - 1) for _ in positions]
        for position, label in zip(positions, labels):
            tokens[position] = MASK if rng.random() < 0.8 else label  # Google's 80% [MASK], else kept
            predictions.append((label, tokens[position]))
        examples.append(serialize_pretraining_example(tokens, [0] * 12 + [1] * 9, positions, labels, 0, 32, 5))
    write_records(str(path), examples)
    return predictions


def test_the_baseline_token_is_the_most_frequent_real_label_of_the_training_records(tmp_path):
    rng = random.Random(1)
    labels = []
    for index, frequent in enumerate((17, 17, 23)):
        labels += [label for label, _ in write_instances(tmp_path / f"shard_{index}.tfrecord", rng, 60, frequent=frequent)]
    files = [str(tmp_path / f"shard_{index}.tfrecord") for index in range(3)]
    expected = collections.Counter(labels).most_common(1)[0][0]
    assert most_frequent_masked_token(files, max_seq_length=32, max_predictions_per_seq=5) == (expected, 180)
    # A sample of the first instances, one file after the other in turn.
    _, read = most_frequent_masked_token(files, max_seq_length=32, max_predictions_per_seq=5, max_instances=7)
    assert read == 7


def test_evaluation_reports_the_baseline_and_the_accuracy_at_mask_inputs(tmp_path):
    rng = random.Random(2)
    write_instances(tmp_path / "train.tfrecord", rng, 50, frequent=11)
    predictions = write_instances(tmp_path / "heldout.tfrecord", rng, 40, frequent=11)
    model = BertPretrainer(CONFIG, use_next_sentence_prediction=True, seed=3)
    # A model that always predicts t11: its accuracies are label counts.
    bias = np.zeros(VOCAB, np.float32)
    bias[11] = 1000.0
    model.variables_by_name["cls/predictions/output_bias"].assign(bias)
    ref = checkpoints.save_checkpoint(str(tmp_path / "ckpt"), 5, dict(model.variables_by_name))
    result = evaluate_checkpoint(
        ref.prefix, CONFIG, [str(tmp_path / "heldout.tfrecord")], batch_size=16, max_seq_length=32,
        max_predictions_per_seq=5, training_files=[str(tmp_path / "train.tfrecord")], tokens=TOKENS,
    )
    assert result["masked_lm_baseline_token"] == "t11"
    assert np.isclose(result["masked_lm_baseline_accuracy"], np.mean([label == 11 for label, _ in predictions]))
    assert result["masked_lm_baseline_training_instances"] == 50
    assert np.isclose(result["masked_lm_accuracy"], result["masked_lm_baseline_accuracy"])
    at_mask = [label for label, shown in predictions if shown == MASK]
    assert 0 < len(at_mask) < len(predictions)
    assert np.isclose(result["masked_lm_accuracy_at_mask_tokens"], np.mean([label == 11 for label in at_mask]))
    # eval.json's keys in their order; each figure is a metric of the table.
    assert list(result) == [
        "checkpoint", "step", "instances", "masked_lm_accuracy", "masked_lm_loss", "masked_lm_accuracy_at_mask_tokens",
        "masked_lm_baseline_accuracy", "masked_lm_baseline_token", "masked_lm_baseline_training_instances",
        "next_sentence_accuracy", "next_sentence_loss", "loss",
    ]
    assert set(result) - {"checkpoint", "masked_lm_baseline_training_instances"} == set(names_shown_in(EVALUATION))
    assert result["loss"] == result["masked_lm_loss"] + result["next_sentence_loss"]
