"""The metrics of training and evaluation: one table of names, labels, formats and where each is shown.

A metric has one name everywhere: in ``metrics.jsonl``, TensorBoard and
``eval.json``. The names are those of Google's evaluation
(``run_pretraining.py``'s eval results): ``masked_lm_accuracy``,
``masked_lm_loss``, ``next_sentence_accuracy``, ``next_sentence_loss`` and
``loss``. Runs logged before the training log used these names wrote
``mlm_accuracy``, ``mlm_loss``, ``nsp_accuracy`` and ``nsp_loss``;
``read_metrics_line`` renames them (``OLD_NAMES``), and every reader of
``metrics.jsonl`` reads its lines with it.

Each consumer takes its metrics from ``TABLE`` by place (``shown_in``), in
the table's order: the training log (what it averages over a log interval,
what it writes to TensorBoard), the report (evaluation table, training
curves, throughput plot), the model card's evaluation table and the status
lines. ``heldout_means`` turns an evaluation's sums into its figures, for
this project's checkpoints and for Transformers models alike.

Imports nothing heavy: the report, the model card and the status command
read it without TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Where a metric is shown.
TRAINING = "training"  # averaged over each log interval by the training log (metrics.jsonl)
TENSORBOARD = "tensorboard"  # a TensorBoard scalar of the training log
EVALUATION = "evaluation"  # a column of the report's evaluation table (from eval.json)
CURVES = "curves"  # a panel of the report's training curves
THROUGHPUT = "throughput"  # a panel of the report's throughput plot
CARD = "card"  # a column of the model card's evaluation table
STATUS = "status"  # the status command's latest-log line
STATUS_HELDOUT = "status held-out"  # the status command's held-out lines


@dataclass(frozen=True)
class Metric:
    name: str  # the key in metrics.jsonl, TensorBoard and eval.json
    label: str  # what a reader sees: table column, plot axis, status line
    format: str  # format spec of a value (format(value, spec))
    shown: tuple[str, ...]  # the places above


TABLE = (
    Metric("step", "step", ",", (EVALUATION,)),
    Metric("instances", "held-out instances", ",", (EVALUATION,)),
    Metric("loss", "loss", ".4f", (TRAINING, TENSORBOARD, EVALUATION, CURVES, STATUS)),
    Metric("masked_lm_accuracy", "masked-LM accuracy", ".4f",
           (TRAINING, TENSORBOARD, EVALUATION, CURVES, CARD, STATUS, STATUS_HELDOUT)),
    Metric("masked_lm_baseline_accuracy", "masked-LM baseline accuracy", ".4f", (EVALUATION,)),
    Metric("masked_lm_baseline_token", "masked-LM baseline token", "", (EVALUATION,)),
    Metric("masked_lm_accuracy_at_mask_tokens", "masked-LM accuracy at [MASK] inputs", ".4f", (EVALUATION,)),
    Metric("masked_lm_loss", "masked-LM loss", ".4f", (TRAINING, TENSORBOARD, EVALUATION, CARD)),
    Metric("next_sentence_accuracy", "next-sentence accuracy", ".4f",
           (TRAINING, TENSORBOARD, EVALUATION, CURVES, CARD, STATUS_HELDOUT)),
    Metric("next_sentence_loss", "next-sentence loss", ".4f", (TRAINING, TENSORBOARD, EVALUATION, CARD)),
    Metric("grad_norm", "gradient norm", ".3g", (TRAINING, TENSORBOARD)),
    Metric("learning_rate", "learning rate", ".3g", (TENSORBOARD,)),
    Metric("loss_scale", "loss scale", "g", (TENSORBOARD,)),
    Metric("sequences_per_second", "sequences/s", ".1f", (TENSORBOARD, THROUGHPUT, STATUS)),
    Metric("tokens_per_second", "tokens/s", ".0f", (TENSORBOARD, THROUGHPUT, STATUS)),
    Metric("model_tflops", "model TFLOP/s", ".2f", (TENSORBOARD,)),
    Metric("mfu", "MFU", ".1%", (TENSORBOARD, THROUGHPUT)),
)
METRICS = {metric.name: metric for metric in TABLE}

# metrics.jsonl names of runs logged before the names above: old name -> name.
OLD_NAMES = {
    "mlm_accuracy": "masked_lm_accuracy",
    "mlm_loss": "masked_lm_loss",
    "nsp_accuracy": "next_sentence_accuracy",
    "nsp_loss": "next_sentence_loss",
}


def shown_in(place: str) -> tuple[Metric, ...]:
    """The metrics shown at a place, in the table's order."""
    return tuple(metric for metric in TABLE if place in metric.shown)


def names_shown_in(place: str) -> tuple[str, ...]:
    return tuple(metric.name for metric in shown_in(place))


def is_next_sentence(metric: Metric) -> bool:
    """A next-sentence figure: none for a model trained without next-sentence prediction."""
    return metric.name.startswith("next_sentence_")


def format_value(name: str, value) -> str:
    """A value as the table formats the metric."""
    return format(value, METRICS[name].format)


def read_metrics_line(line: str) -> dict | None:
    """A metrics.jsonl line as a dict with today's names; None for a line that is not a record with a step.

    A line cut short by a killed job, an empty line or anything but a JSON
    object with a ``step`` is None. Old names (``OLD_NAMES``) are renamed.
    """
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or "step" not in record:
        return None
    return {OLD_NAMES.get(name, name): value for name, value in record.items()}


def accuracy_against_baseline(result: dict) -> str:
    """"0.2140, 3.6x the baseline 0.0597 (always 'the'); at [MASK] inputs 0.1210": did it learn more than frequencies?

    The accuracy counts every masked position, 10% of which show the model
    their own token; at the [MASK] inputs (80%) it has only the context.
    """
    accuracy = result.get("masked_lm_accuracy")
    baseline = result.get("masked_lm_baseline_accuracy")
    if not isinstance(accuracy, (int, float)):
        return "unknown"
    text = format_value("masked_lm_accuracy", accuracy)
    if isinstance(baseline, (int, float)) and baseline > 0:
        text += (f", {accuracy / baseline:.1f}x the baseline {format_value('masked_lm_baseline_accuracy', baseline)}"
                 f" (always {result.get('masked_lm_baseline_token')!r})")
    at_mask = result.get("masked_lm_accuracy_at_mask_tokens")
    if isinstance(at_mask, (int, float)):
        text += f"; at [MASK] inputs {format_value('masked_lm_accuracy_at_mask_tokens', at_mask)}"
    return text


def heldout_means(totals: dict, *, next_sentence: bool) -> dict:
    """An evaluation's figures from its sums over every held-out batch: exact weighted means.

    ``totals`` holds the sums ``modeling.pretraining_loss`` returns, summed
    over the batches: ``mlm_loss_sum``, ``mlm_correct_sum`` and
    ``mlm_weight_sum`` (masked-LM figures are means over the real
    predictions' weights), with next-sentence prediction ``nsp_loss_sum``,
    ``nsp_correct_sum`` and ``nsp_example_count`` (means over instances);
    optionally ``at_mask_correct_sum`` and ``at_mask_weight_sum`` (the
    accuracy at [MASK] inputs) and ``baseline_correct_sum`` (the baseline's
    hits, over the masked-LM weights). ``loss`` is the masked-LM loss plus
    the next-sentence loss, or the masked-LM loss alone without next-sentence
    prediction.
    """
    weight = max(totals.get("mlm_weight_sum", 0.0), 1e-9)
    result = {
        "masked_lm_accuracy": totals.get("mlm_correct_sum", 0.0) / weight,
        "masked_lm_loss": totals.get("mlm_loss_sum", 0.0) / weight,
    }
    if "at_mask_weight_sum" in totals:
        result["masked_lm_accuracy_at_mask_tokens"] = totals["at_mask_correct_sum"] / max(totals["at_mask_weight_sum"], 1e-9)
    if "baseline_correct_sum" in totals:
        result["masked_lm_baseline_accuracy"] = totals["baseline_correct_sum"] / weight
    if next_sentence:
        count = max(totals.get("nsp_example_count", 0.0), 1e-9)
        result["next_sentence_accuracy"] = totals["nsp_correct_sum"] / count
        result["next_sentence_loss"] = totals["nsp_loss_sum"] / count
        result["loss"] = result["masked_lm_loss"] + result["next_sentence_loss"]
    else:
        result["loss"] = result["masked_lm_loss"]
    return result
