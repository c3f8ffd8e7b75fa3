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
    workdir, run = demo_run.workdir, demo_run.run_dir
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
    for path in ("tf/bert_model.ckpt.index", "tf/bert_config.json", "tf/vocab.txt", "hf/config.json",
                 "hf/model.safetensors", "hf/tokenizer.json", "README.md"):
        assert os.path.exists(f"{run}/export/{path}"), path
    status = subprocess.run(
        [sys.executable, "workflow/scripts/status.py", "--configfile", "demo/config.yaml", "--json"],
        cwd=workdir, capture_output=True, text=True, check=True,
    )
    assert json.loads(status.stdout)["finished"] is True


@pytest.mark.slow
def test_finished_segments_are_not_retrained_after_edits(demo_run):
    workdir = demo_run.workdir
    # An edited script, a comment in the config and an unrelated key must not retrain anything.
    with open(os.path.join(workdir, "workflow/scripts/run_pretraining.py"), "a") as handle:
        handle.write("\n# an edit\n")
    config = load_yaml(os.path.join(workdir, "demo/config.yaml"))
    config["training"]["log_every_steps"] = 5
    write_yaml(os.path.join(workdir, "edited.yaml"), config)
    result = snakemake(workdir, "-n", "--configfile", "edited.yaml", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout


def test_paths_with_spaces_and_shell_characters_are_quoted(tmp_path):
    workdir = fresh_clone(str(tmp_path / "clone"))
    corpus_dir = tmp_path / "my corpus; $(touch PWNED) 'x'"
    corpus_dir.mkdir()
    text = open(os.path.join(workdir, "demo/corpus/python-docs-1.txt"), encoding="utf-8").read()
    (corpus_dir / "part one.txt").write_text(text[:200_000].rsplit("\n\n", 1)[0] + "\n", encoding="utf-8")
    config = load_yaml(os.path.join(workdir, "demo/config.yaml"))
    config["run_name"] = "quoting"
    config["corpus"]["files"] = [str(corpus_dir / "*.txt")]
    config["vocabulary"]["size"] = 500
    write_yaml(os.path.join(workdir, "quoting.yaml"), config)
    result = snakemake(workdir, "--configfile", "quoting.yaml", "--cores", "2", "results/quoting/vocab.txt", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert os.path.getsize(os.path.join(workdir, "results/quoting/vocab.txt")) > 0
    assert not os.path.exists(os.path.join(workdir, "PWNED")) and not os.path.exists(tmp_path / "PWNED")


def test_outputs_are_group_shared_not_world_writable(tmp_path):
    workdir = fresh_clone(str(tmp_path))
    result = snakemake(workdir, "--configfile", "demo/config.yaml", "--cores", "2", "results/demo/corpus/heldout.txt", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    mode = os.stat(os.path.join(workdir, "results/demo/corpus/heldout.txt")).st_mode
    assert not mode & 0o007, oct(mode)  # umask 0007: nothing for others


def file_digests(directory, parts):
    """{relative path: SHA-256} of every file under the given parts of a run directory."""
    from bert_pretraining.corpus import file_sha256

    digests = {}
    for part in parts:
        path = os.path.join(directory, part)
        if os.path.isfile(path):
            digests[part] = file_sha256(path)
            continue
        for root, _, names in os.walk(path):
            for name in names:
                full = os.path.join(root, name)
                digests[os.path.relpath(full, directory)] = file_sha256(full)
    return digests


@pytest.mark.slow
def test_a_second_fresh_demo_makes_the_same_data_and_model(demo_run, tmp_path):
    """From the corpus to the export, byte for byte: the demo again, uninterrupted, in another directory.

    demo_run trained its own vocabulary and was killed mid-segment and rerun;
    this run shares nothing with it but the repository's files.
    """
    workdir = fresh_clone(str(tmp_path))
    result = snakemake(workdir, "--configfile", "demo/config.yaml", "--cores", "2", timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    run = os.path.join(workdir, "results", "demo")
    data = ("corpus", "vocab.txt", "bert_config.json", "records")
    ours, theirs = file_digests(run, data), file_digests(demo_run.run_dir, data)
    assert sorted(ours) == sorted(theirs)
    assert [path for path in ours if ours[path] != theirs[path]] == [], "the data stages are not reproducible"
    for path in ("export/hf/model.safetensors", "export/tf/bert_model.ckpt.data-00000-of-00001",
                 "phase128/eval.json", "phase512/eval.json"):
        assert file_digests(run, [path]) == file_digests(demo_run.run_dir, [path]), path
