"""A segment killed mid-way: the rerun resumes it from its newest checkpoint, earlier segments stay."""

import os

import pytest


@pytest.mark.slow
def test_killed_segment_resumes_from_its_newest_checkpoint(demo_run):
    run = demo_run
    layout = run.layout
    assert run.first_returncode != 0, run.first_output[-3000:]
    assert not run.killed_segment_finished
    log = open(layout.log("pretrain", phase="phase128", step=200)).read()
    assert "resuming from" in log and "model.ckpt-150 (step 150)" in log, log[-3000:]
    # The finished first segment was neither rerun nor rewritten.
    assert os.stat(layout.checkpoint_files("phase128", 100)["index"]).st_mtime_ns == run.first_segment_mtime
    second_output = run.second.stdout + run.second.stderr
    assert "model.ckpt-100.index" not in second_output.split("rule pretrain_phase128")[0]
    assert "--end_step=100 " not in second_output
    assert os.path.exists(layout.checkpoint_files("phase512", 360)["index"])
