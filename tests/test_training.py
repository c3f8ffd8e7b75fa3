"""The training segment program: resume exactness, segment chaining, refusals, precisions."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_pretraining import checkpoints
from bert_pretraining.replica import single_process
from bert_pretraining.modeling import BertConfig
from bert_pretraining.training import SegmentSettings, train_segment
from bert_pretraining import training_log
from bert_pretraining.metrics import TRAINING, names_shown_in

from checkpoint_helpers import weights_at
from synthetic_records import VOCAB_SIZE, make_records

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = BertConfig(
    vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=64, max_position_embeddings=64,
)


# What the segments of these tests train on (run_inputs.training_inputs gives a real run's digests).
TRAINED_ON = {"vocab_sha256": "v" * 64, "bert_config_sha256": "c" * 64, "records_sha256": "r" * 64}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    directory = tmp_path_factory.mktemp("records")
    files = make_records(str(directory))
    with open(directory / "records.json") as handle:
        sidecar = json.load(handle)
    return files, {entry["file"]: entry["num_instances"] for entry in sidecar["files"]}, str(directory)


def settings(records, output_dir, start, end, **overrides):
    files, counts, _ = records
    values = dict(
        bert_config=TINY, input_files=files, records_per_file=counts, output_dir=str(output_dir),
        init_checkpoint=None, init_from=None, start_step=start, end_step=end, run_last_step=end,
        max_seq_length=32, max_predictions_per_seq=5, train_batch_size=8, num_train_steps=20,
        num_warmup_steps=2, learning_rate=1e-3, precision="fp32", use_xla=False,
        save_checkpoints_steps=2, keep_checkpoints=2, log_every_steps=2, seed=7,
        scale_learning_rate_by_ranks=False, use_next_sentence_prediction=True, gradient_accumulation_steps=1,
        hang_timeout_seconds=3600, inputs=dict(TRAINED_ON),
    )
    values.update(overrides)
    return SegmentSettings(**values)


def assert_identical(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# Bit-identical comparisons need deterministic kernels from the first step on.
tf.config.experimental.enable_op_determinism()


@pytest.fixture(scope="module")
def straight_run(records, tmp_path_factory):
    """Reference: 10 steps (more than one epoch of a rank's data) without interruption."""
    output = tmp_path_factory.mktemp("straight")
    assert train_segment(settings(records, output, 0, 10), single_process()) == 0
    return weights_at(output, 10)


def test_checkpoint_holds_google_names_and_training_state(straight_run):
    assert straight_run["global_step"] == 10
    assert "bert/encoder/layer_1/attention/self/query/kernel" in straight_run
    assert "bert/encoder/layer_1/attention/self/query/kernel/adam_m" in straight_run
    assert "cls/predictions/output_bias" in straight_run and "cls/seq_relationship/output_weights" in straight_run
    assert straight_run["input_position"] == 10  # batches consumed, for the exact resume


def test_resume_after_a_crash_is_bit_identical(records, tmp_path, monkeypatch, straight_run):
    original = training_log.TrainingLog.after_step

    def crash_at_step_8(self, step, state):
        if step == 8:  # trained to step 8 on the device, neither logged nor saved
            raise KeyboardInterrupt("simulated crash")
        return original(self, step, state)

    monkeypatch.setattr(training_log.TrainingLog, "after_step", crash_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        train_segment(settings(records, tmp_path, 0, 10), single_process())
    monkeypatch.setattr(training_log.TrainingLog, "after_step", original)
    assert checkpoints.newest_valid_checkpoint(str(tmp_path)).step == 6
    assert train_segment(settings(records, tmp_path, 0, 10), single_process()) == 0
    assert_identical(weights_at(tmp_path, 10), straight_run)


def test_two_segments_equal_one(records, tmp_path, straight_run):
    assert train_segment(settings(records, tmp_path, 0, 4), single_process()) == 0
    first_end = os.path.join(str(tmp_path), "model.ckpt-4")
    assert train_segment(settings(records, tmp_path, 4, 10, init_checkpoint=first_end), single_process()) == 0
    assert_identical(weights_at(tmp_path, 10), straight_run)
    # Segment ends are kept whatever keep_checkpoints says.
    assert os.path.exists(first_end + ".index")
    metrics = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [m["step"] for m in metrics] == [2, 4, 6, 8, 10]
    assert metrics[-1]["loss"] < metrics[0]["loss"]


def test_lamb_trains_and_two_segments_equal_one(records, tmp_path):
    """LAMB's bias correction counts from the checkpointed global step, so a resumed segment continues exactly."""
    straight, adamw = tmp_path / "straight", tmp_path / "adamw"
    straight.mkdir(), adamw.mkdir()
    assert train_segment(settings(records, straight, 0, 6, optimizer="lamb"), single_process()) == 0
    assert train_segment(settings(records, tmp_path, 0, 3, optimizer="lamb"), single_process()) == 0
    first_end = os.path.join(str(tmp_path), "model.ckpt-3")
    resumed = settings(records, tmp_path, 3, 6, optimizer="lamb", init_checkpoint=first_end)
    assert train_segment(resumed, single_process()) == 0
    assert_identical(weights_at(tmp_path, 6), weights_at(straight, 6))
    assert train_segment(settings(records, adamw, 0, 6), single_process()) == 0
    name = "bert/encoder/layer_1/attention/self/query/kernel"
    assert not np.array_equal(weights_at(adamw, 6)[name], weights_at(straight, 6)[name])
    metrics = [json.loads(line) for line in open(straight / "metrics.jsonl")]
    assert all(np.isfinite(m["loss"]) for m in metrics)


def test_segment_without_start_checkpoint_is_refused(records, tmp_path):
    from bert_pretraining.errors import CheckpointError

    with pytest.raises(CheckpointError, match="segment 4-10: no checkpoint"):
        train_segment(settings(records, tmp_path, 4, 10), single_process())


def test_finished_segment_is_not_retrained(records, tmp_path):
    assert train_segment(settings(records, tmp_path, 0, 2), single_process()) == 0
    before = os.stat(tmp_path / "model.ckpt-2.data-00000-of-00001").st_mtime_ns
    assert train_segment(settings(records, tmp_path, 0, 2), single_process()) == 0
    assert os.stat(tmp_path / "model.ckpt-2.data-00000-of-00001").st_mtime_ns == before


def test_a_checkpoint_trained_on_other_inputs_is_refused_naming_what_changed(records, tmp_path):
    from bert_pretraining.errors import CheckpointError
    from bert_pretraining.run_inputs import checkpoint_inputs

    assert train_segment(settings(records, tmp_path, 0, 2), single_process()) == 0
    assert checkpoint_inputs(str(tmp_path / "model.ckpt-2")) == TRAINED_ON
    other_vocabulary = {**TRAINED_ON, "vocab_sha256": "w" * 64}
    # Resuming (a finished segment rerun, as root) and continuing in the same phase are refused ...
    with pytest.raises(CheckpointError, match=r"model.ckpt-2 was trained on other inputs .*the vocabulary \(vocab.txt\) changed"):
        train_segment(settings(records, tmp_path, 0, 2, inputs=other_vocabulary), single_process())
    init = str(tmp_path / "model.ckpt-2")
    other_records = {**TRAINED_ON, "records_sha256": "s" * 64}
    with pytest.raises(CheckpointError, match="the records changed.*new run_name"):
        train_segment(settings(records, tmp_path, 2, 4, init_checkpoint=init, inputs=other_records), single_process())
    assert not os.path.exists(tmp_path / "model.ckpt-4.index")
    # ... and the next phase starts from it with its own records, but not with another vocabulary.
    next_phase = tmp_path / "next"
    next_phase.mkdir()
    with pytest.raises(CheckpointError, match="the vocabulary"):
        train_segment(settings(records, next_phase, 2, 4, init_checkpoint=init, inputs=other_vocabulary), single_process())
    assert train_segment(settings(records, next_phase, 2, 4, init_checkpoint=init, inputs=other_records), single_process()) == 0
    assert checkpoint_inputs(str(next_phase / "model.ckpt-4")) == other_records


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_trains_with_xla(records, tmp_path, precision):
    assert train_segment(settings(records, tmp_path, 0, 4, precision=precision, use_xla=True), single_process()) == 0
    weights = weights_at(tmp_path, 4)
    if precision == "fp16":
        assert "loss_scale" in weights
    assert all(np.all(np.isfinite(value)) for value in weights.values() if value.dtype.kind == "f")
    assert weights["bert/embeddings/word_embeddings"].dtype == np.float32


def test_records_mismatch_is_refused_before_training(records, tmp_path):
    _, _, directory = records
    config = tmp_path / "bert_config.json"
    TINY.to_json_file(str(config))
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "workflow/scripts/run_pretraining.py"),
         f"--bert_config_file={config}", f"--input_file={directory}/shard_*.tfrecord",
         f"--output_dir={tmp_path}/out", "--max_seq_length=64", "--max_predictions_per_seq=5",
         "--num_train_steps=4", "--train_batch_size=8"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "max_seq_length is 32 but training is configured with max_seq_length 64" in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(f"{tmp_path}/out")


def test_no_nsp_variant_trains(records, tmp_path):
    assert train_segment(settings(records, tmp_path, 0, 2, use_next_sentence_prediction=False), single_process()) == 0
    weights = weights_at(tmp_path, 2)
    assert "cls/seq_relationship/output_weights" not in weights
    assert "cls/predictions/output_bias" in weights


def test_log_reports_model_flops_and_mfu_with_a_configured_peak(records, tmp_path, monkeypatch):
    monkeypatch.setenv("BERT_PEAK_TFLOPS", "0.5")
    assert train_segment(settings(records, tmp_path, 0, 2), single_process()) == 0
    record = json.loads(open(tmp_path / "metrics.jsonl").read().splitlines()[-1])
    assert set(names_shown_in(TRAINING)) <= set(record)  # the averaged metrics, under the table's names
    assert record["model_tflops"] > 0
    assert record["mfu"] == pytest.approx(record["model_tflops"] / 0.5)


def test_divergence_stops_the_segment_and_keeps_the_last_good_checkpoint(records, tmp_path):
    from bert_pretraining.divergence import DivergenceError

    with pytest.raises(DivergenceError, match="training diverged at step"):
        train_segment(
            settings(records, tmp_path, 0, 40, learning_rate=1e12, num_warmup_steps=0, log_every_steps=1,
                     save_checkpoints_steps=1, keep_checkpoints=50),
            single_process(),
        )
    newest = checkpoints.newest_valid_checkpoint(str(tmp_path))
    weights = weights_at(tmp_path, newest.step)
    assert all(np.all(np.isfinite(v)) for v in weights.values() if v.dtype.kind == "f")
