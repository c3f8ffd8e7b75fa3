"""Masked-LM and next-sentence accuracy and loss of a checkpoint on held-out records.

The figures are exact weighted means over every held-out instance (sums of
per-batch sums), not means of per-batch means, as Google's run_pretraining.py
evaluation computes them with tf.metrics.
"""

from __future__ import annotations

import tensorflow as tf

from . import checkpoints
from .inputs import evaluation_dataset
from .modeling import BertConfig, BertPretrainer, pretraining_loss


def load_model(prefix: str, bert_config: BertConfig, use_next_sentence_prediction: bool) -> BertPretrainer:
    """A BertPretrainer with the model weights of a checkpoint (optimizer state ignored)."""
    model = BertPretrainer(bert_config, use_next_sentence_prediction=use_next_sentence_prediction)
    expected = {name: (tuple(v.shape), v.dtype.name) for name, v in model.variables_by_name.items()}
    values = checkpoints.read_checkpoint(prefix, expected)
    for name, variable in model.variables_by_name.items():
        variable.assign(values[name])
    return model


def evaluate_checkpoint(
    prefix: str,
    bert_config: BertConfig,
    files: list[str],
    *,
    batch_size: int,
    max_seq_length: int,
    max_predictions_per_seq: int,
    use_next_sentence_prediction: bool = True,
) -> dict:
    model = load_model(prefix, bert_config, use_next_sentence_prediction)

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
        return {name: value for name, value in metrics.items() if name.endswith(("_sum", "_count"))}

    totals: dict[str, float] = {}
    instances = 0
    for features in evaluation_dataset(
        files, batch_size=batch_size, max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq
    ):
        instances += int(features["input_ids"].shape[0])
        for name, value in batch_sums(features).items():
            totals[name] = totals.get(name, 0.0) + float(value.numpy())
    result = {
        "checkpoint": prefix,
        "step": checkpoints.step_of(prefix),
        "instances": instances,
        "masked_lm_accuracy": totals.get("mlm_correct_sum", 0.0) / max(totals.get("mlm_weight_sum", 0.0), 1e-9),
        "masked_lm_loss": totals.get("mlm_loss_sum", 0.0) / max(totals.get("mlm_weight_sum", 0.0), 1e-9),
    }
    if use_next_sentence_prediction:
        count = max(totals.get("nsp_example_count", 0.0), 1e-9)
        result["next_sentence_accuracy"] = totals["nsp_correct_sum"] / count
        result["next_sentence_loss"] = totals["nsp_loss_sum"] / count
        result["loss"] = result["masked_lm_loss"] + result["next_sentence_loss"]
    else:
        result["loss"] = result["masked_lm_loss"]
    return result
