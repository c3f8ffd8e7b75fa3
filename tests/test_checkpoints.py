"""Checkpoints: round trip, atomic publishing, damage detection, pruning; a segment's CheckpointManager."""

import logging
import os
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from bert_pretraining import checkpoints
from bert_pretraining.checkpoint_manager import CheckpointManager
from bert_pretraining.errors import CheckpointError
from bert_pretraining.replica import Replica


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
    checkpoints.copy_segment_end(checkpoints.CheckpointRef(200, os.path.join(directory, "model.ckpt-200")))
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
    checkpoints.copy_segment_end(ref)
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


# --------------------------------------------------------------------------
# CheckpointManager: one segment's start, saves and published end


class TinyState:
    """What the manager needs of a TrainingState: named tensors, model weights, step and input position."""

    def __init__(self, value=0.0, step=0, position=0):
        self.model = SimpleNamespace(variables_by_name={"bert/pooler/dense/bias": tf.Variable(tf.fill([3], value))})
        self.global_step = tf.Variable(step, dtype=tf.int64)
        self.input_position = tf.Variable(position, dtype=tf.int64)

    def tensors_by_name(self):
        return {**self.model.variables_by_name, "global_step": self.global_step, "input_position": self.input_position}


class CountingReplica(Replica):
    def __init__(self, rank=0, size=1):
        super().__init__(rank=rank, size=size)
        self.barriers = 0

    def barrier(self):
        self.barriers += 1


def manager(directory, start, end, replica=None, **options):
    return CheckpointManager(
        str(directory), keep=2, start_step=start, end_step=end, replica=replica or CountingReplica(), **options
    )


def test_a_rerun_resumes_from_its_segments_newest_checkpoint_with_its_input_position(tmp_path):
    manager(tmp_path, 0, 10).save(TinyState(4.0, step=4, position=4))
    manager(tmp_path, 0, 10).save(TinyState(6.0, step=6, position=6))
    state = TinyState()
    how = manager(tmp_path, 0, 10).restore_or_initialize(state)
    assert how == f"resuming from {tmp_path}/model.ckpt-6 (step 6)"
    assert int(state.global_step.numpy()) == 6 and int(state.input_position.numpy()) == 6
    assert state.model.variables_by_name["bert/pooler/dense/bias"].numpy().tolist() == [6.0] * 3


def test_the_next_phase_starts_from_the_previous_final_checkpoint_at_input_position_0(tmp_path):
    first = manager(tmp_path / "phase128", 0, 10)
    first.finish(TinyState(1.0, step=10, position=10))
    previous_end = str(tmp_path / "phase128" / "model.ckpt-10")
    state = TinyState()
    how = manager(tmp_path / "phase512", 10, 20, init_checkpoint=previous_end).restore_or_initialize(state)
    assert how == f"initialised from {previous_end}"
    assert int(state.global_step.numpy()) == 10 and int(state.input_position.numpy()) == 0
    # The next segment of the same phase keeps the input position.
    state = TinyState()
    manager(tmp_path / "phase128", 10, 20, init_checkpoint=previous_end).restore_or_initialize(state)
    assert int(state.input_position.numpy()) == 10


def test_a_final_checkpoint_that_lost_its_files_is_used_through_its_copy(tmp_path):
    phase128 = tmp_path / "phase128"
    manager(phase128, 0, 10).finish(TinyState(1.0, step=10, position=10))
    for path in checkpoints.CheckpointRef(10, str(phase128 / "model.ckpt-10")).files:
        os.unlink(path)  # Snakemake deleted the declared outputs of a job that then failed
    state = TinyState()
    how = manager(tmp_path / "phase512", 10, 20, init_checkpoint=str(phase128 / "model.ckpt-10")).restore_or_initialize(
        state
    )
    assert how == f"initialised from {phase128}/{checkpoints.SEGMENT_ENDS_DIR}/model.ckpt-10"
    assert int(state.global_step.numpy()) == 10
    # Finishing that segment again republishes the copy instead of saving.
    manager(phase128, 0, 10).finish(TinyState(99.0, step=10))
    assert not checkpoints.verify_checkpoint(str(phase128 / "model.ckpt-10"))
    assert tf.train.load_checkpoint(str(phase128 / "model.ckpt-10")).get_tensor("bert/pooler/dense/bias")[0] == 1.0


def test_only_the_chief_writes_and_every_rank_waits_at_the_end(tmp_path):
    worker = CountingReplica(rank=1, size=2)
    assert manager(tmp_path, 0, 10, worker).save(TinyState(step=4)) is None
    manager(tmp_path, 0, 10, worker).finish(TinyState(step=10))
    assert os.listdir(tmp_path) == [] and worker.barriers == 1
    chief = CountingReplica(rank=0, size=2)
    manager(tmp_path, 0, 10, chief).finish(TinyState(step=10))
    assert chief.barriers == 1 and not checkpoints.verify_checkpoint(str(tmp_path / "model.ckpt-10"))
    assert os.path.exists(tmp_path / checkpoints.SEGMENT_ENDS_DIR / "model.ckpt-10.index")


# --------------------------------------------------------------------------
# A damaged checkpoint of any kind falls back to an intact one (issue 27)


def cut_in_half(path):
    """What a full disk or a crashed file server leaves: the first half of the file."""
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def flip_a_byte(path):
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


def files_and_contents(root):
    """``{relative path: bytes}`` of every file under ``root``: what must never be lost."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = open(path, "rb").read()
    return found


def finished_segment(phase_dir, end, value, intermediate=None):
    """A phase directory whose segment 0-``end`` is done: maybe an intermediate save, the final one and its copy."""
    if intermediate is not None:
        manager(phase_dir, 0, end).save(TinyState(float(intermediate), step=intermediate, position=intermediate))
    manager(phase_dir, 0, end).finish(TinyState(value, step=end, position=end))
    return phase_dir / f"model.ckpt-{end}"


def bias_of(prefix):
    return tf.train.load_checkpoint(str(prefix)).get_tensor("bert/pooler/dense/bias").tolist()


def test_the_segment_end_copy_is_a_separate_verified_file_with_the_same_time(tmp_path):
    final = finished_segment(tmp_path, 10, 1.0)
    copy = tmp_path / checkpoints.SEGMENT_ENDS_DIR / "model.ckpt-10"
    for suffix in (checkpoints.DATA_SUFFIX, checkpoints.INDEX_SUFFIX, checkpoints.MANIFEST_SUFFIX):
        original, copied = os.stat(f"{final}{suffix}"), os.stat(f"{copy}{suffix}")
        assert original.st_ino != copied.st_ino, suffix  # a hard link would share any damage
        assert copied.st_mtime_ns == original.st_mtime_ns, suffix
    assert not checkpoints.verify_checkpoint(str(copy))
    # Damage to the published file leaves the copy intact.
    cut_in_half(tmp_path / f"model.ckpt-10{checkpoints.DATA_SUFFIX}")
    assert checkpoints.verify_checkpoint(str(final)) and not checkpoints.verify_checkpoint(str(copy))


def test_a_damaged_intermediate_checkpoint_is_skipped_and_the_previous_one_resumed(tmp_path, caplog):
    manager(tmp_path, 0, 10).save(TinyState(4.0, step=4, position=4))
    manager(tmp_path, 0, 10).save(TinyState(6.0, step=6, position=6))
    cut_in_half(tmp_path / f"model.ckpt-6{checkpoints.DATA_SUFFIX}")
    state = TinyState()
    with caplog.at_level(logging.WARNING):
        how = manager(tmp_path, 0, 10).restore_or_initialize(state)
    assert how == f"resuming from {tmp_path}/model.ckpt-4 (step 4)"
    assert int(state.input_position.numpy()) == 4
    assert f"skipping damaged checkpoint {tmp_path}/model.ckpt-6" in caplog.text and "(truncated?)" in caplog.text


def test_a_damaged_segment_end_is_republished_from_its_copy_with_its_time(tmp_path, caplog):
    final = finished_segment(tmp_path, 10, 1.0, intermediate=6)
    data = tmp_path / f"model.ckpt-10{checkpoints.DATA_SUFFIX}"
    intact, mtime = data.read_bytes(), os.stat(data).st_mtime_ns
    cut_in_half(data)
    before = files_and_contents(tmp_path)
    state = TinyState()
    with caplog.at_level(logging.WARNING):
        how = manager(tmp_path, 10, 20, init_checkpoint=str(final)).restore_or_initialize(state)
    # Read under its own name (the next segment's declared input), from the copy's bytes.
    assert how == f"initialised from {final}"
    assert int(state.global_step.numpy()) == 10 and int(state.input_position.numpy()) == 10
    assert state.model.variables_by_name["bert/pooler/dense/bias"].numpy().tolist() == [1.0] * 3
    assert data.read_bytes() == intact and os.stat(data).st_mtime_ns == mtime  # Snakemake sees nothing changed
    copy_data = tmp_path / checkpoints.SEGMENT_ENDS_DIR / data.name
    assert os.stat(data).st_ino != os.stat(copy_data).st_ino
    assert "skipping damaged checkpoint" in caplog.text and "(truncated?)" in caplog.text
    # The damaged files were moved aside, not deleted.
    after = files_and_contents(tmp_path)
    aside = f"{checkpoints.DAMAGED_DIR}/model.ckpt-10-1/{data.name}"
    assert after[aside] == before[data.name] and len(after[aside]) == len(intact) // 2
    assert all(content in after.values() for content in before.values())
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(final)


def test_a_segment_finishing_again_republishes_its_damaged_end_from_the_copy(tmp_path):
    final = finished_segment(tmp_path, 10, 1.0)
    flip_a_byte(tmp_path / f"model.ckpt-10{checkpoints.DATA_SUFFIX}")  # same size: found by the SHA-256
    manager(tmp_path, 0, 10).finish(TinyState(99.0, step=10))
    assert not checkpoints.verify_checkpoint(str(final)) and bias_of(final) == [1.0] * 3
    assert os.listdir(tmp_path / checkpoints.DAMAGED_DIR) == ["model.ckpt-10-1"]


def test_a_damaged_last_checkpoint_of_a_phase_is_repaired_for_the_next_phase_evaluation_and_export(tmp_path):
    phase128 = tmp_path / "phase128"
    final = finished_segment(phase128, 10, 1.0)
    data = phase128 / f"model.ckpt-10{checkpoints.DATA_SUFFIX}"
    intact = data.read_bytes()
    cut_in_half(data)
    # evaluate.py and export_model read a phase's final checkpoint through recovered_prefix.
    assert checkpoints.recovered_prefix(f"{final}{checkpoints.INDEX_SUFFIX}") == str(final)
    assert data.read_bytes() == intact
    values = checkpoints.read_checkpoint(str(final), {"bert/pooler/dense/bias": ((3,), "float32")})
    assert values["bert/pooler/dense/bias"].tolist() == [1.0] * 3
    # Damaged again: the next phase's first segment repairs it the same way, at input position 0.
    cut_in_half(data)
    state = TinyState()
    how = manager(tmp_path / "phase512", 10, 20, init_checkpoint=str(final)).restore_or_initialize(state)
    assert how == f"initialised from {final}" and int(state.input_position.numpy()) == 0
    assert data.read_bytes() == intact
    assert sorted(os.listdir(phase128 / checkpoints.DAMAGED_DIR)) == ["model.ckpt-10-1", "model.ckpt-10-2"]


def test_a_segment_end_damaged_in_both_copies_is_set_aside_and_the_segment_redone(tmp_path, caplog):
    final = finished_segment(tmp_path, 10, 1.0, intermediate=6)
    cut_in_half(tmp_path / f"model.ckpt-10{checkpoints.DATA_SUFFIX}")
    flip_a_byte(tmp_path / checkpoints.SEGMENT_ENDS_DIR / f"model.ckpt-10{checkpoints.DATA_SUFFIX}")
    before = files_and_contents(tmp_path)
    with caplog.at_level(logging.WARNING), pytest.raises(CheckpointError, match="neither it nor its copy"):
        manager(tmp_path, 10, 20, init_checkpoint=str(final)).restore_or_initialize(TinyState())
    assert "Snakemake will rerun the segment that ends at step 10" in caplog.text
    # The declared output is missing now (so Snakemake reruns the segment); nothing was deleted.
    assert not os.path.exists(f"{final}{checkpoints.INDEX_SUFFIX}")
    assert not os.path.exists(f"{final}{checkpoints.DATA_SUFFIX}")
    after = files_and_contents(tmp_path)
    assert all(content in after.values() for name, content in before.items() if name != "checkpoint")
    assert sorted(os.listdir(tmp_path / checkpoints.DAMAGED_DIR)) == [
        "model.ckpt-10-1", "model.ckpt-10.segment-end-copy-1"
    ]
    # The rerun of segment 0-10 resumes from its intact intermediate checkpoint and publishes both copies anew.
    state = TinyState()
    assert manager(tmp_path, 0, 10).restore_or_initialize(state) == f"resuming from {tmp_path}/model.ckpt-6 (step 6)"
    manager(tmp_path, 0, 10).finish(TinyState(1.0, step=10, position=10))
    copy = tmp_path / checkpoints.SEGMENT_ENDS_DIR / "model.ckpt-10"
    assert not checkpoints.verify_checkpoint(str(final)) and not checkpoints.verify_checkpoint(str(copy))
    assert bias_of(final) == bias_of(copy) == [1.0] * 3


def test_the_sizes_only_check_repairs_cut_files_and_moves_nothing_else(tmp_path):
    final = finished_segment(tmp_path, 10, 1.0)
    data = tmp_path / f"model.ckpt-10{checkpoints.DATA_SUFFIX}"
    intact, mtime = data.read_bytes(), os.stat(data).st_mtime_ns
    cut_in_half(data)
    assert checkpoints.recover_checkpoint(str(final), hash_files=False) == checkpoints.CheckpointRef(10, str(final))
    assert data.read_bytes() == intact and os.stat(data).st_mtime_ns == mtime
    # A flipped bit keeps the size: left to the jobs that hash what they read.
    flip_a_byte(data)
    assert checkpoints.recover_checkpoint(str(final), hash_files=False).prefix == str(final)
    assert os.listdir(tmp_path / checkpoints.DAMAGED_DIR) == ["model.ckpt-10-1"]
    # No index under the name (a failed job's deleted outputs, or a save under way): nothing is moved.
    os.unlink(f"{final}{checkpoints.INDEX_SUFFIX}")
    found = checkpoints.recover_checkpoint(str(final), hash_files=False)
    assert found.prefix == str(tmp_path / checkpoints.SEGMENT_ENDS_DIR / "model.ckpt-10") and data.exists()
    # A segment that never ran: nothing at all.
    assert checkpoints.recover_checkpoint(str(tmp_path / "model.ckpt-20"), hash_files=False) is None
