"""A user's own config names only what it changes: plan.py, status.py and `snakemake -n` describe one run."""

import json
import os
import re

import pytest

from workflow_helpers import REPO, run_script, snakemake, write_yaml



PARTIAL_CONFIGS = {
    "run name and corpus": {"run_name": "mine", "corpus": {"files": ["demo/corpus/python-docs-2.txt"]}},
    "phases only": {"phases": [
        {"max_seq_length": 128, "max_predictions_per_seq": 20, "batch_size_per_gpu": 64,
         "first_step": 0, "last_step": 500000, "segment_steps": 200000},
        {"max_seq_length": 256, "max_predictions_per_seq": 40, "batch_size_per_gpu": 32,
         "first_step": 500000, "last_step": 600000, "segment_steps": 200000},
    ]},
    "learning rate only": {"training": {"learning_rate": 5.0e-5}},
}


def script(name, *args):
    result = run_script(name, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def dry_run_segments(path):
    """(run directory, [(phase, end step)]) of the training jobs `snakemake -n -p` plans."""
    result = snakemake(REPO, "-n", "-p", "--configfile", str(path), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    ends = re.findall(r"--output_dir=(\S+)/(phase\d+) .*?--end_step=(\d+) ", output)
    run_dirs = {run_dir for run_dir, _, _ in ends}
    assert len(run_dirs) == 1, run_dirs
    learning_rates = set(re.findall(r"run_pretraining\.py .*--learning_rate=(\S+) ", output))
    # Each segment appears twice: its check_<phase> job and its pretrain_<phase> job.
    return run_dirs.pop(), sorted({(phase, int(end)) for _, phase, end in ends}), learning_rates


@pytest.mark.slow  # dry runs of the production plan
@pytest.mark.snakemake
@pytest.mark.parametrize("name", list(PARTIAL_CONFIGS))
def test_plan_status_and_dry_run_agree(tmp_path, name):
    path = write_yaml(tmp_path / "mine.yaml", PARTIAL_CONFIGS[name])
    plan = json.loads(script("plan.py", "--configfile", str(path), "--json"))
    status = json.loads(script("status.py", "--configfile", str(path), "--json"))
    run_dir, segments, learning_rates = dry_run_segments(path)

    expected_name = PARTIAL_CONFIGS[name].get("run_name", "finbert-base-cased")
    assert plan["run_name"] == expected_name
    assert run_dir == status["run_dir"] == os.path.join("results", expected_name)
    planned = [(s["phase"], s["start_step"], s["end_step"]) for s in plan["segments"]]
    assert planned == [(s["phase"], s["start_step"], s["end_step"]) for s in status["segments"]]
    assert sorted((phase, end) for phase, _, end in planned) == segments
    expected_rate = PARTIAL_CONFIGS[name].get("training", {}).get("learning_rate", 1.0e-4)
    assert learning_rates == {str(expected_rate)}
    if name == "phases only":
        assert [end for _, _, end in planned] == [200000, 400000, 500000, 600000]
        assert "Traceback" not in script("plan.py", "--configfile", str(path))


def test_plan_refuses_a_bad_partial_config_with_the_key(tmp_path):
    path = write_yaml(tmp_path / "mine.yaml", {"training": {"learning_rate": "fast"}})
    for name in ("plan.py", "status.py"):
        result = run_script(name, "--configfile", path)
        assert result.returncode == 2, result.stderr
        assert "training.learning_rate (value 'fast')" in result.stderr and "Traceback" not in result.stderr
