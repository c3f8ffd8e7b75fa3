"""The table of metrics: its names are what training logs and evaluation returns; old log lines; means from sums."""

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_pretraining import metrics
from bert_pretraining.metrics import (
    CARD, CURVES, EVALUATION, OLD_NAMES, STATUS, STATUS_HELDOUT, TABLE, TENSORBOARD, THROUGHPUT, TRAINING,
    heldout_means, names_shown_in, read_metrics_line,
)

PLACES = (TRAINING, TENSORBOARD, EVALUATION, CURVES, THROUGHPUT, CARD, STATUS, STATUS_HELDOUT)
# What eval.json holds beside the table's figures: where the figures come from.
EVALUATION_CONTEXT = {"checkpoint", "masked_lm_baseline_training_instances"}


def test_the_table_names_each_metric_once_and_shows_it_somewhere():
    names = [metric.name for metric in TABLE]
    assert len(names) == len(set(names)) and set(metrics.METRICS) == set(names)
    for metric in TABLE:
        assert metric.label and metric.shown and set(metric.shown) <= set(PLACES), metric
        format(0.5 if metric.format else "text", metric.format)  # a valid format spec
    assert all(names_shown_in(place) for place in PLACES)
    assert not set(OLD_NAMES) & set(names) and set(OLD_NAMES.values()) <= set(names_shown_in(TRAINING))


def test_importing_the_table_imports_no_tensorflow():
    code = "import sys, bert_pretraining.metrics; print('tensorflow' in sys.modules or 'torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_training_log_averages_what_the_pretraining_loss_returns_under_the_table_names():
    tf = pytest.importorskip("tensorflow")
    from bert_pretraining import training_log
    from bert_pretraining.modeling import pretraining_loss

    rng = np.random.default_rng(0)
    _, returned = pretraining_loss(
        rng.normal(size=(2, 3, 7)).astype(np.float32), rng.normal(size=(2, 2)).astype(np.float32),
        rng.integers(0, 7, (2, 3)), np.ones((2, 3), np.float32), rng.integers(0, 2, (2, 1)),
    )
    figures = {name for name in returned if not name.endswith(("_sum", "_count"))}
    # loss and grad_norm come from the training step itself.
    assert figures | {"loss", "grad_norm"} == set(training_log.AVERAGED) == set(names_shown_in(TRAINING))
    assert set(training_log.AVERAGED) <= set(names_shown_in(TENSORBOARD))
    assert all(value.dtype == tf.float32 for value in returned.values())


def test_an_old_metrics_line_is_read_under_the_new_names():
    old = {"step": 20, "phase": "phase128", "loss": 6.5, "mlm_loss": 5.8, "nsp_loss": 0.7, "mlm_accuracy": 0.12,
           "nsp_accuracy": 0.55, "grad_norm": 1.5, "learning_rate": 1e-4, "sequences_per_second": 64.0}
    assert read_metrics_line(json.dumps(old) + "\n") == {
        "step": 20, "phase": "phase128", "loss": 6.5, "masked_lm_loss": 5.8, "next_sentence_loss": 0.7,
        "masked_lm_accuracy": 0.12, "next_sentence_accuracy": 0.55, "grad_norm": 1.5, "learning_rate": 1e-4,
        "sequences_per_second": 64.0,
    }
    new = dict(step=30, masked_lm_accuracy=0.2)
    assert read_metrics_line(json.dumps(new)) == new
    for line in ('{"loss": 3.0, "step"', "", "\n", "[1, 2]", '{"loss": 3.0}', "7"):
        assert read_metrics_line(line) is None, line


def test_means_from_sums_against_a_hand_computation():
    # Two batches: masked-LM weights 3 + 2 (one padding prediction weighs 0), 4 instances.
    totals = {
        "mlm_loss_sum": 6.0 + 4.0, "mlm_correct_sum": 1.0 + 2.0, "mlm_weight_sum": 3.0 + 2.0,
        "nsp_loss_sum": 1.2 + 0.8, "nsp_correct_sum": 2.0 + 1.0, "nsp_example_count": 2.0 + 2.0,
        "at_mask_correct_sum": 1.0, "at_mask_weight_sum": 4.0, "baseline_correct_sum": 1.0,
    }
    assert heldout_means(totals, next_sentence=True) == pytest.approx({
        "masked_lm_accuracy": 3 / 5, "masked_lm_loss": 10 / 5, "masked_lm_accuracy_at_mask_tokens": 1 / 4,
        "masked_lm_baseline_accuracy": 1 / 5, "next_sentence_accuracy": 3 / 4, "next_sentence_loss": 2 / 4,
        "loss": 10 / 5 + 2 / 4,
    })
    without = heldout_means({"mlm_loss_sum": 10.0, "mlm_correct_sum": 3.0, "mlm_weight_sum": 5.0}, next_sentence=False)
    assert without == pytest.approx({"masked_lm_accuracy": 0.6, "masked_lm_loss": 2.0, "loss": 2.0})
    assert heldout_means({}, next_sentence=False) == {"masked_lm_accuracy": 0.0, "masked_lm_loss": 0.0, "loss": 0.0}


predictions = st.lists(
    st.tuples(st.floats(0.0, 20.0), st.booleans(), st.sampled_from([0.0, 1.0])), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(predictions, st.lists(st.tuples(st.floats(0.0, 5.0), st.booleans()), min_size=1, max_size=20),
       st.integers(1, 7))
def test_means_of_batch_sums_are_the_means_over_every_prediction(masked, sentences, batch):
    """However the predictions fall into batches, the sums give the weighted means over all of them."""
    totals = {}
    for start in range(0, len(masked), batch):
        part = masked[start:start + batch]
        for name, value in (("mlm_loss_sum", sum(w * loss for loss, _, w in part)),
                            ("mlm_correct_sum", sum(w * correct for _, correct, w in part)),
                            ("mlm_weight_sum", sum(w for _, _, w in part))):
            totals[name] = totals.get(name, 0.0) + value
    totals.update(nsp_loss_sum=sum(loss for loss, _ in sentences), nsp_correct_sum=sum(c for _, c in sentences),
                  nsp_example_count=float(len(sentences)))
    result = heldout_means(totals, next_sentence=True)
    weights = np.array([w for _, _, w in masked])
    if weights.sum():
        assert result["masked_lm_loss"] == pytest.approx(np.average([loss for loss, _, _ in masked], weights=weights))
        assert result["masked_lm_accuracy"] == pytest.approx(np.average([c for _, c, _ in masked], weights=weights))
    else:  # no real prediction: 0, not NaN
        assert result["masked_lm_loss"] == result["masked_lm_accuracy"] == 0.0
    assert 0.0 <= result["masked_lm_accuracy"] <= 1.0 and 0.0 <= result["next_sentence_accuracy"] <= 1.0
    assert result["loss"] == result["masked_lm_loss"] + result["next_sentence_loss"]
    assert set(result) <= set(names_shown_in(EVALUATION))


@pytest.mark.parametrize("use_nsp", [True, False])
def test_our_evaluation_and_the_transformers_one_give_the_same_figures_under_the_table_names(tmp_path, use_nsp):
    """One checkpoint, exported: evaluate_checkpoint and transformers_heldout_metrics agree, key for key."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    if int(transformers.__version__.split(".")[0]) < 5:
        pytest.skip(f"the export targets Transformers 5, found {transformers.__version__}")
    import random

    from bert_pretraining import checkpoints, export
    from bert_pretraining.evaluation import evaluate_checkpoint
    from bert_pretraining.files import file_sha256
    from bert_pretraining.modeling import BertPretrainer
    from bert_pretraining.run_inputs import bert_config_digest
    from bert_pretraining.transformers_evaluation import transformers_heldout_metrics
    from test_evaluation import CONFIG, TOKENS, write_instances

    records = str(tmp_path / "heldout.tfrecord")
    write_instances(records, random.Random(4), 40, frequent=11)
    vocab, config = str(tmp_path / "vocab.txt"), str(tmp_path / "bert_config.json")
    with open(vocab, "w") as handle:
        handle.write("".join(f"{token}\n" for token in TOKENS))
    CONFIG.to_json_file(config)
    model = BertPretrainer(CONFIG, use_next_sentence_prediction=use_nsp, seed=5)
    inputs = {"vocab_sha256": file_sha256(vocab), "bert_config_sha256": bert_config_digest(config)}
    ref = checkpoints.save_checkpoint(str(tmp_path / "run"), 7, dict(model.variables_by_name), inputs=inputs)
    export.export_model(ref.prefix, config, vocab, str(tmp_path / "export"), do_lower_case=False)

    ours = evaluate_checkpoint(ref.prefix, CONFIG, [records], batch_size=16, max_seq_length=32,
                               max_predictions_per_seq=5, use_next_sentence_prediction=use_nsp)
    theirs = transformers_heldout_metrics(str(tmp_path / "export" / "hf"), records, max_seq_length=32,
                                          max_predictions_per_seq=5, batch_size=16)
    assert set(ours) - EVALUATION_CONTEXT == set(theirs) | {"step"}
    assert set(theirs) <= set(names_shown_in(EVALUATION))
    assert any(name.startswith("next_sentence_") for name in theirs) == use_nsp
    assert theirs["instances"] == ours["instances"] == 40
    for name in theirs:
        assert theirs[name] == pytest.approx(ours[name], abs=1e-4), name
