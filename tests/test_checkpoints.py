"""Checkpoints: round trip, atomic publishing, damage detection, pruning."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from bert_pretraining import checkpoints
from bert_pretraining.errors import CheckpointError


def tensors(step):
    return {
        "bert/embeddings/word_embeddings": tf.fill([4, 3], float(step)),
        "bert/embeddings/word_embeddings/adam_m": tf.zeros([4, 3]),
        "global_step": tf.constant(step, tf.int64),
    }


EXPECTED = {
    "bert/embeddings/word_embeddings": ((4, 3), "float32"),
    "global_step": ((), "int64"),
}


def test_round_trip_with_google_names(tmp_path):
    ref = checkpoints.save_checkpoint(str(tmp_path), 10, tensors(10))
    assert ref.prefix == str(tmp_path / "model.ckpt-10")
    assert (tmp_path / "model.ckpt-10.index").exists()
    assert (tmp_path / "model.ckpt-10.data-00000-of-00001").exists()
    values = checkpoints.read_checkpoint(ref.prefix, EXPECTED)
    assert values["global_step"] == 10
    np.testing.assert_array_equal(values["bert/embeddings/word_embeddings"], np.full([4, 3], 10.0))
    # Google's tools read the same names and find the newest through the state file.
    assert tf.train.latest_checkpoint(str(tmp_path)) == ref.prefix
    names = dict(tf.train.list_variables(ref.prefix))
    assert names["bert/embeddings/word_embeddings"] == [4, 3]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".saving")]


def test_shape_mismatch_names_the_tensor(tmp_path):
    ref = checkpoints.save_checkpoint(str(tmp_path), 1, tensors(1))
    with pytest.raises(CheckpointError, match=r"word_embeddings has shape \[4, 3\], the model expects \[5, 3\]"):
        checkpoints.read_checkpoint(ref.prefix, {"bert/embeddings/word_embeddings": ((5, 3), "float32")})
    with pytest.raises(CheckpointError, match="has no tensor cls/predictions/output_bias"):
        checkpoints.read_checkpoint(ref.prefix, {"cls/predictions/output_bias": ((4,), "float32")})


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove_data"])
def test_damaged_newest_checkpoint_falls_back(tmp_path, caplog, damage):
    checkpoints.save_checkpoint(str(tmp_path), 10, tensors(10))
    checkpoints.save_checkpoint(str(tmp_path), 20, tensors(20))
    data = tmp_path / "model.ckpt-20.data-00000-of-00001"
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[:-7])
    elif damage == "flip":
        content = bytearray(data.read_bytes())
        content[5] ^= 0xFF
        data.write_bytes(bytes(content))
    else:
        data.unlink()
    with caplog.at_level(logging.WARNING):
        ref = checkpoints.newest_valid_checkpoint(str(tmp_path))
    assert ref.step == 10
    assert "model.ckpt-20" in caplog.text and "skipping damaged checkpoint" in caplog.text
    with pytest.raises(CheckpointError, match="damaged"):
        checkpoints.read_checkpoint(str(tmp_path / "model.ckpt-20"), EXPECTED)


def test_a_killed_save_leaves_no_checkpoint_under_its_name(tmp_path):
    checkpoints.save_checkpoint(str(tmp_path), 10, tensors(10))
    # What a save killed halfway leaves: a staging directory, no index.
    staging = tmp_path / ".saving-20-999"
    staging.mkdir()
    (staging / "model.ckpt-20.data-00000-of-00001").write_bytes(b"partial")
    assert [ref.step for ref in checkpoints.list_checkpoints(str(tmp_path))] == [10]
    checkpoints.save_checkpoint(str(tmp_path), 30, tensors(30))
    assert not staging.exists()


def test_prune_keeps_newest_and_segment_ends(tmp_path):
    directory = str(tmp_path)
    for step in (100, 200):
        checkpoints.save_checkpoint(directory, step, tensors(step))
    checkpoints.link_segment_end(checkpoints.CheckpointRef(200, os.path.join(directory, "model.ckpt-200")))
    for step in (250, 300, 350, 400):
        checkpoints.save_checkpoint(directory, step, tensors(step))
    deleted = checkpoints.prune_checkpoints(directory, keep=2)
    assert deleted == [100, 250, 300]
    steps = [ref.step for ref in checkpoints.list_checkpoints(directory, include_segment_ends=False)]
    assert steps == [200, 350, 400]
    assert tf.train.latest_checkpoint(directory).endswith("model.ckpt-400")


def test_segment_end_survives_deletion_of_declared_outputs(tmp_path):
    directory = str(tmp_path)
    ref = checkpoints.save_checkpoint(directory, 100, tensors(100))
    checkpoints.link_segment_end(ref)
    for path in ref.files:  # what Snakemake does to a failed job's outputs
        os.unlink(path)
    found = checkpoints.newest_valid_checkpoint(directory)
    assert found.step == 100 and checkpoints.SEGMENT_ENDS_DIR in found.prefix
    republished = checkpoints.republish(found, directory)
    assert republished.prefix == ref.prefix and not checkpoints.verify_checkpoint(ref.prefix)


def test_disk_error_while_saving_keeps_previous(tmp_path, monkeypatch):
    directory = str(tmp_path)
    checkpoints.save_checkpoint(directory, 10, tensors(10))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints, "_replace", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint stays the latest"):
        checkpoints.save_checkpoint(directory, 20, tensors(20))
    assert checkpoints.newest_valid_checkpoint(directory).step == 10
    assert tf.train.latest_checkpoint(directory).endswith("model.ckpt-10")
