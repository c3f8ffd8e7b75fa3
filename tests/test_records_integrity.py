"""Damaged record files: a cut, a flipped byte, a deleted file.

The reader names the file and the byte offset; check_<phase>, training and
the evaluation refuse with the file and the repair command (not a
TensorFlow traceback, not a silently shorter epoch); the dry run and the
status warn from the sizes alone; the repair remakes exactly the damaged
files, byte-identical, and Snakemake then has nothing to do.
"""

import os
import struct
import subprocess
import sys

import pytest

from bert_pretraining import checkpoints
from bert_pretraining.bert_config import BertConfig
from bert_pretraining.errors import RecordsError
from bert_pretraining.files import file_sha256
from bert_pretraining.records_sidecar import (
    check_record_files,
    check_records_sidecar,
    damaged_records_in,
    record_file_problems,
    verify_record_files,
)
from bert_pretraining.tfrecords import scan_records
from synthetic_records import make_records
from workflow_helpers import DEMO_DAG_CONFIGS, REPO, fresh_clone, snakemake

SCRIPTS = os.path.join(REPO, "workflow", "scripts")
REPAIR = "make repair-records"
MODEL = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
             max_position_embeddings=32)


def record_offsets(path):
    """Where each record of a TFRecord file starts (read here from the lengths alone, not with the package)."""
    data, offsets, offset = open(path, "rb").read(), [], 0
    while offset < len(data):
        offsets.append(offset)
        offset += 16 + struct.unpack_from("<Q", data, offset)[0]
    return offsets


def cut(path, size):
    with open(path, "r+b") as handle:
        handle.truncate(size)


def flip_byte(path, offset):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0xFF]))


def test_the_reader_counts_the_records_and_names_the_offset_of_a_cut_or_corrupt_one(tmp_path):
    path = make_records(str(tmp_path / "seq32"), files=1, per_file=40)[0]
    offsets = record_offsets(path)
    assert scan_records(path) == len(offsets) == 40
    flip_byte(path, offsets[7] + 20)  # in the eighth record's data
    with pytest.raises(RecordsError, match=rf"shard_00000\.tfrecord: corrupt record data at byte {offsets[7]} \(CRC"):
        scan_records(path)
    flip_byte(path, offsets[7] + 20)
    flip_byte(path, offsets[3] + 2)  # in the fourth record's length
    with pytest.raises(RecordsError, match=rf"shard_00000\.tfrecord: corrupt record length at byte {offsets[3]} "):
        scan_records(path)
    flip_byte(path, offsets[3] + 2)
    cut(path, offsets[20] + 30)  # half-way, inside the 21st record
    with pytest.raises(RecordsError, match=rf"shard_00000\.tfrecord: truncated record at byte {offsets[20]} .*"
                                           rf"the file ends at byte {offsets[20] + 30}\); the file is incomplete"):
        scan_records(path)
    cut(path, offsets[20])  # at a record boundary: a shorter file of whole records
    assert scan_records(path) == 20


def test_a_cut_a_corrupt_and_a_missing_record_file_are_each_named_with_the_repair_command(tmp_path):
    directory = str(tmp_path / "seq32")
    files = make_records(directory, files=3, per_file=40)
    sidecar = os.path.join(directory, "records.json")
    assert verify_record_files(sidecar) == [] and record_file_problems(sidecar) == []
    size = os.path.getsize(files[0])
    cut(files[0], size // 2)
    flip_byte(files[1], record_offsets(files[1])[5] + 30)
    os.remove(files[2])

    # Sizes only (every dry run and status, every segment and evaluation job): the cut and the missing file.
    assert record_file_problems(sidecar) == [
        f"{files[0]} has {size // 2:,} bytes, but records.json lists {size:,}; the file is cut or was changed",
        f"{files[2]} does not exist, but records.json beside it lists it",
    ]
    assert damaged_records_in([sidecar, str(tmp_path / "no-records-yet" / "records.json")]) == [
        f"{problem}; remake it with {REPAIR} CONFIG=\"<the run's --configfile files>\""
        for problem in record_file_problems(sidecar)
    ]
    with pytest.raises(RecordsError, match=rf"{files[0]} has .* bytes, but records\.json lists .* with {REPAIR}"):
        check_records_sidecar(sidecar, max_seq_length=32, max_predictions_per_seq=5)
    # The scan of check_<phase>: the flipped byte too, with its offset.
    problems = verify_record_files(sidecar)
    assert len(problems) == 3
    assert problems[1] == f"{files[1]}: corrupt record data at byte {record_offsets(files[1])[5]} (CRC mismatch)"
    with pytest.raises(RecordsError) as error:
        check_record_files(sidecar)
    assert str(error.value).startswith(f"{files[0]} has ") and str(error.value).endswith(
        f"; remake the damaged record files with {REPAIR} CONFIG=\"<the run's --configfile files>\"")


def run_pretraining(directory, *flags):
    """run_pretraining.py on the records of ``directory`` with a tiny model; its one-line error is the last line."""
    BertConfig(**MODEL).to_json_file(os.path.join(directory, "bert_config.json"))
    command = [
        sys.executable, os.path.join(SCRIPTS, "run_pretraining.py"),
        f"--bert_config_file={directory}/bert_config.json", f"--input_file={directory}/shard_*.tfrecord",
        f"--output_dir={directory}/model", "--max_seq_length=32", "--max_predictions_per_seq=5",
        "--train_batch_size=4", "--num_train_steps=40", "--precision=fp32", "--use_xla=false", *flags,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_check_and_training_name_a_record_file_with_a_flipped_byte(tmp_path):
    directory = str(tmp_path / "seq32")
    files = make_records(directory, files=2, per_file=40)
    offset = record_offsets(files[1])[9]
    flip_byte(files[1], offset + 40)  # the size is right: only reading finds it
    expected = f"error: {files[1]}: corrupt record data at byte {offset} (CRC mismatch); remake the damaged record files with {REPAIR}"
    # check_<phase> (rule check_phase128) scans every frame before a segment is submitted.
    check = run_pretraining(directory, "--check_only=1")
    assert check.returncode == 2 and check.stderr.splitlines()[-1].startswith(expected), check.stderr[-3000:]
    # Training itself: TensorFlow's DataLossError names no file; the error does.
    training = run_pretraining(directory)
    assert training.returncode == 2 and training.stderr.splitlines()[-1].startswith(expected), training.stderr[-3000:]
    assert "Traceback" not in training.stderr


def test_the_evaluation_and_its_baseline_name_a_cut_record_file(tmp_path):
    from bert_pretraining.evaluation import evaluate_checkpoint
    from bert_pretraining.modeling import BertPretrainer

    heldout = make_records(str(tmp_path / "heldout"), files=1, per_file=40)[0]
    training = make_records(str(tmp_path / "training"), files=2, per_file=40, seed=1)
    model = BertPretrainer(BertConfig(**MODEL), use_next_sentence_prediction=True, seed=3)
    prefix = checkpoints.save_checkpoint(str(tmp_path / "ckpt"), 5, dict(model.variables_by_name)).prefix

    def evaluate():
        return evaluate_checkpoint(prefix, BertConfig(**MODEL), [heldout], batch_size=8, max_seq_length=32,
                                   max_predictions_per_seq=5, training_files=training)

    assert evaluate()["instances"] == 40
    offsets = record_offsets(training[1])
    cut(training[1], offsets[10] + 25)  # the baseline reads the training records
    with pytest.raises(RecordsError, match=rf"{training[1]}: truncated record at byte {offsets[10]} .*{REPAIR}"):
        evaluate()
    training = make_records(str(tmp_path / "training"), files=2, per_file=40, seed=1)  # whole again
    offsets = record_offsets(heldout)
    cut(heldout, offsets[30] + 25)
    with pytest.raises(RecordsError, match=rf"^{heldout}: truncated record at byte {offsets[30]} .*{REPAIR}"):
        evaluate()


# --- the workflow: check_<phase>, the dry run, the status and the repair ---------------------


def record_file_digests(records):
    return {name: file_sha256(os.path.join(records, name)) for name in sorted(os.listdir(records))}


@pytest.mark.snakemake
@pytest.mark.slow
def test_the_dry_run_warns_check_refuses_and_the_repair_remakes_exactly_the_damaged_files(tmp_path):
    workdir = fresh_clone(str(tmp_path / "clone"))
    configs = ["--configfile", *DEMO_DAG_CONFIGS]
    relative = "results/demo/records/seq128"  # as Snakemake and the messages name it, from the workflow's directory
    records = os.path.join(workdir, relative)
    made = snakemake(workdir, *configs, "--cores", "2", f"{relative}/records.json", "results/demo/bert_config.json",
                     timeout=900)
    assert made.returncode == 0, made.stderr[-5000:]
    before = record_file_digests(records)
    times = {name: os.stat(os.path.join(records, name)).st_mtime_ns for name in before}
    shard = os.path.join(records, "shard_00000.tfrecord")
    cut(shard, os.path.getsize(shard) // 2)
    os.remove(os.path.join(records, "heldout.tfrecord"))

    dry = snakemake(workdir, *configs, "-n", f"{relative}/records.json", timeout=300)
    dry_output = dry.stdout + dry.stderr
    assert dry.returncode == 0, dry_output[-3000:]
    for damaged in ("shard_00000.tfrecord has ", "heldout.tfrecord does not exist"):
        assert f"WARNING: {relative}/{damaged}" in dry_output, dry_output[-3000:]
    assert REPAIR in dry_output
    status = subprocess.run([sys.executable, os.path.join(SCRIPTS, "status.py"), *configs], cwd=workdir,
                            capture_output=True, text=True, timeout=120)
    assert f"WARNING: {relative}/shard_00000.tfrecord has " in status.stdout, status.stdout + status.stderr

    checked = snakemake(workdir, *configs, "--cores", "1", "results/demo/phase128/.checked-100", timeout=600)
    assert checked.returncode != 0
    log = open(os.path.join(workdir, "results/demo/logs/phase128/check-100.log")).read()
    assert f"error: {relative}/shard_00000.tfrecord has " in log and REPAIR in log, log[-3000:]

    repair = subprocess.run([sys.executable, os.path.join(SCRIPTS, "repair_records.py"), *configs], cwd=workdir,
                            capture_output=True, text=True, timeout=600)
    assert repair.returncode == 0, repair.stdout[-3000:] + repair.stderr[-5000:]
    assert record_file_digests(records) == before
    # Only the two damaged parts were remade, and every file has its time back: nothing is out of date.
    repair_output = repair.stdout + repair.stderr
    assert repair_output.count("rule create_records") == 2, repair_output[-5000:]
    remade = {"shard_00000.tfrecord": "shard_00000.json", "heldout.tfrecord": "heldout.json"}
    # The remade files have the time of their stats file (written by the same job; a cut file has the cut's time).
    times.update({record: times[stats] for record, stats in remade.items()})
    assert {name: os.stat(os.path.join(records, name)).st_mtime_ns for name in before} == times
    after = snakemake(workdir, *configs, "-n", f"{relative}/records.json", "results/demo/phase128/.checked-100",
                      timeout=300)
    after_output = after.stdout + after.stderr
    assert after.returncode == 0 and "WARNING" not in after_output, after_output[-3000:]
    assert "create_records" not in after_output and "summarize_records" not in after_output, after_output[-3000:]
    nothing = snakemake(workdir, *configs, "-n", f"{relative}/records.json", timeout=300)
    assert "Nothing to be done" in nothing.stdout + nothing.stderr, nothing.stdout + nothing.stderr
