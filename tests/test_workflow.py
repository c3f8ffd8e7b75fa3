"""The workflow as users run it: the dry run of the production plan, and the demo end to end."""

import json
import os
import subprocess
import sys

import pytest

from workflow_helpers import fresh_clone, load_yaml, snakemake, write_yaml


def job_counts(output):
    counts, in_table = {}, False
    for line in output.splitlines():
        if line.startswith("job "):
            in_table = True
            continue
        if in_table:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                counts[parts[0]] = int(parts[1])
            elif parts and parts[0] == "total":
                break
    return counts


def test_dry_run_of_the_production_config_on_a_fresh_clone(tmp_path):
    workdir = fresh_clone(str(tmp_path))
    result = snakemake(workdir, "-n", timeout=300)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    counts = job_counts(output)
    assert counts["pretrain_phase128"] == 4 and counts["pretrain_phase512"] == 1
    assert counts["create_records"] == 2 * (16 + 1)  # 16 shards + held-out, two lengths
    for step in (260000, 520000, 780000, 900000):
        assert f"results/finbert-base-cased/phase128/model.ckpt-{step}.index" in output
    assert "results/finbert-base-cased/phase512/model.ckpt-1000000.index" in output
    assert "--init_checkpoint=results/finbert-base-cased/phase128/model.ckpt-900000" in output


@pytest.mark.slow
def test_demo_runs_end_to_end(demo_run):
    workdir, result = demo_run
    run = os.path.join(workdir, "results", "demo")
    for step in (100, 200, 300):
        assert os.path.exists(f"{run}/phase128/model.ckpt-{step}.index")
    assert os.path.exists(f"{run}/phase512/model.ckpt-360.index")
    assert os.path.getsize(f"{run}/vocab.txt") > 0
    for seq in (128, 512):
        sidecar = json.load(open(f"{run}/records/seq{seq}/records.json"))
        assert sidecar["max_seq_length"] == seq and sidecar["num_instances"] > 0
    metrics = [json.loads(line) for line in open(f"{run}/phase128/metrics.jsonl")]
    assert metrics[-1]["loss"] < metrics[0]["loss"] - 1.0, "the loss should fall over phase 1"
    for phase in ("phase128", "phase512"):
        evaluation = json.load(open(f"{run}/{phase}/eval.json"))
        assert 0 < evaluation["masked_lm_accuracy"] <= 1 and evaluation["instances"] > 0
    status = subprocess.run(
        [sys.executable, "workflow/scripts/status.py", "--configfile", "demo/config.yaml", "--json"],
        cwd=workdir, capture_output=True, text=True, check=True,
    )
    assert json.loads(status.stdout)["finished"] is True


@pytest.mark.slow
def test_finished_segments_are_not_retrained_after_edits(demo_run):
    workdir, _ = demo_run
    # An edited script, a comment in the config and an unrelated key must not retrain anything.
    with open(os.path.join(workdir, "workflow/scripts/run_pretraining.py"), "a") as handle:
        handle.write("\n# an edit\n")
    config = load_yaml(os.path.join(workdir, "demo/config.yaml"))
    config["training"]["log_every_steps"] = 5
    write_yaml(os.path.join(workdir, "edited.yaml"), config)
    result = snakemake(workdir, "-n", "--configfile", "edited.yaml", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout
