"""Masked-LM and next-sentence accuracy and loss of a checkpoint on held-out records.

The figures are exact weighted means over every held-out instance (sums of
per-batch sums), not means of per-batch means, as Google's run_pretraining.py
evaluation computes them with tf.metrics.

Beside the accuracy stands its baseline: the accuracy of always predicting
the masked token that the training records ask for most often (in English
"the", ",", "."). A model whose accuracy is that baseline has learned the
unigram frequencies and nothing else.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import checkpoints
from .inputs import evaluation_dataset, naming_damaged_records, parse_spec
from .metrics import heldout_means
from .modeling import BertConfig, BertPretrainer, pretraining_loss
from .tokenization import SPECIAL_TOKEN_ROLES


def load_model(prefix: str, bert_config: BertConfig, use_next_sentence_prediction: bool) -> BertPretrainer:
    """A BertPretrainer with the model weights of a checkpoint (optimizer state ignored)."""
    model = BertPretrainer(bert_config, use_next_sentence_prediction=use_next_sentence_prediction)
    expected = {name: (tuple(v.shape), v.dtype.name) for name, v in model.variables_by_name.items()}
    values = checkpoints.read_checkpoint(prefix, expected)
    for name, variable in model.variables_by_name.items():
        variable.assign(values[name])
    return model


# Training instances read for the baseline: the most frequent masked token of a
# large sample is that of all the records, and a production run's records are
# far too many to read in an evaluation job.
BASELINE_INSTANCES = 200_000


def most_frequent_masked_token(
    files: list[str], *, max_seq_length: int, max_predictions_per_seq: int, max_instances: int = BASELINE_INSTANCES
) -> tuple[int, int]:
    """The masked-token id the records ask for most often, and how many instances were read.

    The files are read round-robin, one record from each in turn, up to ``max_instances``.
    """
    spec = {name: feature for name, feature in parse_spec(max_seq_length, max_predictions_per_seq).items()
            if name in ("masked_lm_ids", "masked_lm_weights")}
    records = tf.data.Dataset.from_tensor_slices(list(files)).interleave(
        tf.data.TFRecordDataset, cycle_length=max(1, len(files)), block_length=1
    )
    counts = np.zeros(0, np.float64)
    instances = 0
    with naming_damaged_records(files):
        for batch in records.take(max_instances).batch(4096).map(lambda s: tf.io.parse_example(s, spec)):
            ids = batch["masked_lm_ids"].numpy().ravel()
            weights = batch["masked_lm_weights"].numpy().ravel()
            batch_counts = np.bincount(ids, weights=weights)
            if len(batch_counts) > len(counts):
                counts = np.pad(counts, (0, len(batch_counts) - len(counts)))
            counts[: len(batch_counts)] += batch_counts
            instances += int(batch["masked_lm_ids"].shape[0])
    if not instances:
        raise ValueError(f"no records in {', '.join(files)}")
    return int(np.argmax(counts)), instances


def evaluate_checkpoint(
    prefix: str,
    bert_config: BertConfig,
    files: list[str],
    *,
    batch_size: int,
    max_seq_length: int,
    max_predictions_per_seq: int,
    use_next_sentence_prediction: bool = True,
    training_files: list[str] = (),
    tokens: list[str] | None = None,
) -> dict:
    """The checkpoint's figures on ``files``; with ``training_files``, the baseline too.

    With ``tokens`` (the vocabulary) the baseline's token is named, and the
    accuracy at the positions whose input is [MASK] is reported too: 80% of
    the masked positions, and what a fill-mask pipeline measures (at the 10%
    kept unchanged the model can copy its input).
    """
    model = load_model(prefix, bert_config, use_next_sentence_prediction)
    mask_id = tokens.index(SPECIAL_TOKEN_ROLES["mask_token"]) if tokens else -1
    baseline_token_id = baseline_instances = None
    if training_files:
        baseline_token_id, baseline_instances = most_frequent_masked_token(
            training_files, max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq
        )

    @tf.function
    def batch_sums(features):
        mlm_logits, nsp_logits = model(
            features["input_ids"], features["input_mask"], features["segment_ids"],
            features["masked_lm_positions"], training=False,
        )
        _, metrics = pretraining_loss(
            mlm_logits, nsp_logits, features["masked_lm_ids"], features["masked_lm_weights"],
            features["next_sentence_labels"],
        )
        sums = {name: value for name, value in metrics.items() if name.endswith(("_sum", "_count"))}
        if tokens:  # the [MASK] token is known
            shown = tf.gather(features["input_ids"], features["masked_lm_positions"], batch_dims=1)
            at_mask = tf.cast(shown == mask_id, tf.float32) * features["masked_lm_weights"]
            correct = tf.cast(tf.argmax(mlm_logits, -1, output_type=tf.int32) == features["masked_lm_ids"], tf.float32)
            sums["at_mask_correct_sum"] = tf.reduce_sum(at_mask * correct)
            sums["at_mask_weight_sum"] = tf.reduce_sum(at_mask)
        return sums

    totals: dict[str, float] = {}
    instances = 0
    dataset = evaluation_dataset(
        files, batch_size=batch_size, max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq
    )
    with naming_damaged_records(files):
        for features in dataset:
            instances += int(features["input_ids"].shape[0])
            for name, value in batch_sums(features).items():
                totals[name] = totals.get(name, 0.0) + float(value.numpy())
            if baseline_token_id is not None:
                hits = (features["masked_lm_ids"].numpy() == baseline_token_id) * features["masked_lm_weights"].numpy()
                totals["baseline_correct_sum"] = totals.get("baseline_correct_sum", 0.0) + float(hits.sum())
    result = {"checkpoint": prefix, "step": checkpoints.step_of(prefix), "instances": instances}
    for name, value in heldout_means(totals, next_sentence=use_next_sentence_prediction).items():
        result[name] = value
        if name == "masked_lm_baseline_accuracy":  # the baseline's token beside it, as eval.json always had them
            result["masked_lm_baseline_token"] = tokens[baseline_token_id] if tokens else baseline_token_id
            result["masked_lm_baseline_training_instances"] = baseline_instances
    return result
