"""A damaged final checkpoint in a finished run: the rerun repairs it and ends with the same model (issue 27)."""

import os
import shutil
import stat

import pytest

from bert_pretraining import checkpoints
from bert_pretraining.files import file_sha256
from bert_pretraining.run_layout import RunLayout
from checkpoint_helpers import read_all_tensors
from fault_helpers import CONFIG, PHASE1, PHASE2, RUN, write_small_config
from workflow_helpers import fresh_clone, snakemake


def cut_in_half(path):
    """A protected (read-only) file cut to its first half, as a crashed file server leaves it; its time is now."""
    mode = os.stat(path).st_mode
    os.chmod(path, mode | stat.S_IWUSR)
    os.truncate(path, os.path.getsize(path) // 2)
    os.chmod(path, mode)


def rerun(workdir):
    result = snakemake(workdir, "--configfile", CONFIG, "--cores", "2", timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


@pytest.mark.slow
@pytest.mark.snakemake
def test_a_cut_final_checkpoint_is_repaired_and_the_run_ends_with_the_same_model(tmp_path):
    workdir = fresh_clone(str(tmp_path / "clone"))
    write_small_config(workdir)
    layout = RunLayout(os.path.join(workdir, "results", RUN))
    rerun(workdir)
    middle = layout.checkpoint_files(PHASE1, 30)["data"]  # a segment's end
    last = layout.checkpoint(PHASE2, 70)  # the run's last: evaluation and export read it
    model = os.path.join(layout.export_dir, "hf", "model.safetensors")
    last_data = layout.checkpoint_files(PHASE2, 70)["data"]
    before = {path: (file_sha256(path), os.stat(path).st_mtime_ns) for path in (middle, last_data)}
    weights, exported = read_all_tensors(last), file_sha256(model)

    # The published files cut, their .segment-ends copies intact: repaired before the DAG is built.
    for path in before:
        cut_in_half(path)
    output = rerun(workdir)
    assert "Nothing to be done" in output, output[-6000:]
    assert output.count("skipping damaged checkpoint") == 2, output[-6000:]
    for path, (digest, mtime) in before.items():
        # The copy's time is the save's; Snakemake touched the output a moment later: never newer.
        assert file_sha256(path) == digest and os.stat(path).st_mtime_ns <= mtime, path

    # The run's last checkpoint cut in both places before the export was made: set aside, and its
    # segment retrained to the same weights. (With the export made, nothing needs the checkpoint again.)
    cut_in_half(last_data)
    cut_in_half(checkpoints.segment_end_copy(last) + checkpoints.DATA_SUFFIX)
    shutil.rmtree(layout.export_dir)
    output = rerun(workdir)
    assert "Snakemake will rerun the segment that ends at step 70" in output, output[-6000:]
    assert "--end_step=30 " not in output and "--end_step=60 " not in output
    retrained = read_all_tensors(last)
    assert sorted(retrained) == sorted(weights)
    assert all((retrained[name] == weights[name]).all() for name in weights)
    assert file_sha256(model) == exported
    damaged = os.listdir(layout.damaged(PHASE2))
    assert sorted(damaged) == ["model.ckpt-70-1", "model.ckpt-70-2", "model.ckpt-70.segment-end-copy-1"]
