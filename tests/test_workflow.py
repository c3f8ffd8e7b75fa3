"""The workflow as users run it: the dry run of the production plan, and the demo end to end."""

import json
import os
import subprocess
import sys

import pytest

from bert_pretraining.run_layout import RunLayout
from workflow_helpers import DEMO_DAG_CONFIGS, demo_dag_config, fresh_clone, load_yaml, snakemake, write_yaml

pytestmark = pytest.mark.snakemake  # every test runs Snakemake: dry runs, a few jobs, or the demo


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
    layout = RunLayout("results/finbert-base-cased")
    for step in (260000, 520000, 780000, 900000):
        assert layout.checkpoint_files("phase128", step)["index"] in output
    assert layout.checkpoint_files("phase512", 1000000)["index"] in output
    assert f"--init_checkpoint={layout.checkpoint('phase128', 900000)}" in output


@pytest.mark.slow
def test_demo_runs_end_to_end(demo_run):
    workdir, run = demo_run.workdir, demo_run.layout
    for step in (100, 200, 300):
        assert os.path.exists(run.checkpoint_files("phase128", step)["index"])
    assert os.path.exists(run.checkpoint_files("phase512", 360)["index"])
    assert os.path.getsize(run.vocab) > 0
    for seq in (128, 512):
        sidecar = json.load(open(run.records_sidecar(seq)))
        assert sidecar["max_seq_length"] == seq and sidecar["num_instances"] > 0
    metrics = [json.loads(line) for line in open(run.metrics("phase128"))]
    assert metrics[-1]["loss"] < metrics[0]["loss"] - 1.0, "the loss should fall over phase 1"
    for phase in ("phase128", "phase512"):
        evaluation = json.load(open(run.eval_json(phase)))
        assert 0 < evaluation["masked_lm_accuracy"] <= 1 and evaluation["instances"] > 0
    for path in ("tf/bert_model.ckpt.index", "tf/bert_config.json", "tf/vocab.txt", "hf/config.json",
                 "hf/model.safetensors", "hf/tokenizer.json", "README.md"):
        assert os.path.exists(os.path.join(run.export_dir, path)), path
    status = subprocess.run(
        [sys.executable, "workflow/scripts/status.py", "--configfile", *DEMO_DAG_CONFIGS, "--json"],
        cwd=workdir, capture_output=True, text=True, check=True,
    )
    assert json.loads(status.stdout)["finished"] is True


# The demo's DAG at the tests' size (tests/demo_dag.yaml, 360 steps) must learn more than token
# frequencies: a regression that stops learning leaves the accuracy at the baseline (1x). It
# measured 3.1x at both phases on the hand-split demo text (make demo's 1,000 steps on the
# prepared JSON Lines: 3.2x at both phases).
LEARNED_AT_LEAST = 2.5


@pytest.mark.slow
def test_the_demo_learns_more_than_token_frequencies(demo_run):
    for phase in ("phase128", "phase512"):
        result = json.load(open(demo_run.layout.eval_json(phase)))
        assert result["masked_lm_baseline_accuracy"] > 0 and result["masked_lm_baseline_training_instances"] > 0
        assert result["masked_lm_accuracy"] >= LEARNED_AT_LEAST * result["masked_lm_baseline_accuracy"], result


def masked_sentences(tokenizer, sentences, rng, fraction=0.15):
    """(text with [MASK]s, the ids they hide) for sentences whose masked text tokenizes back to the same ids."""
    for sentence in sentences:
        ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
        if not 8 <= len(ids) <= 100:
            continue
        positions = sorted(rng.sample(range(len(ids)), max(1, round(fraction * len(ids)))))
        masked = [tokenizer.mask_token_id if index in positions else token for index, token in enumerate(ids)]
        text = tokenizer.decode(masked)
        if tokenizer(text, add_special_tokens=False)["input_ids"] == masked:
            yield text, [ids[index] for index in positions]


@pytest.mark.slow
def test_the_export_is_a_fill_mask_model_that_agrees_with_its_evaluation(demo_run):
    """Transformers' fill-mask pipeline on held-out sentences finds the hidden token at about eval.json's rate."""
    import random

    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    export = os.path.join(demo_run.layout.export_dir, "hf")
    fill = transformers.pipeline("fill-mask", model=export, tokenizer=export, top_k=1, device="cpu")
    with open(demo_run.layout.heldout, encoding="utf-8") as handle:
        sentences = [line.strip() for line in handle if line.strip()]
    correct = total = 0
    for text, hidden in list(masked_sentences(fill.tokenizer, sentences, random.Random(0)))[:600]:
        predictions = fill(text)
        if len(hidden) == 1:
            predictions = [predictions]
        for expected, (best,) in zip(hidden, predictions):
            correct += best["token"] == expected
            total += 1
    assert total >= 400, total  # 430 masked tokens in the demo's held-out sentences (87 documents)
    rate = correct / total
    evaluation = json.load(open(demo_run.layout.eval_json("phase512")))
    # eval.json's accuracy at the positions whose input is [MASK], as here; but there in 512-token pairs of
    # segments, here in single sentences: the same task with less context, so about, not exactly, the same rate.
    at_mask = evaluation["masked_lm_accuracy_at_mask_tokens"]
    assert abs(rate - at_mask) <= 0.4 * max(rate, at_mask) + 0.02, (rate, evaluation)


@pytest.mark.slow
def test_finished_segments_are_not_retrained_after_edits(demo_run):
    workdir = demo_run.workdir
    # An edited script, a comment in the config and an unrelated key must not retrain anything.
    with open(os.path.join(workdir, "workflow/scripts/run_pretraining.py"), "a") as handle:
        handle.write("\n# an edit\n")
    config = demo_dag_config(workdir)  # the configuration the run was made with
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
    vocab = RunLayout("results/quoting").vocab
    result = snakemake(workdir, "--configfile", "quoting.yaml", "--cores", "2", vocab, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert os.path.getsize(os.path.join(workdir, vocab)) > 0
    assert not os.path.exists(os.path.join(workdir, "PWNED")) and not os.path.exists(tmp_path / "PWNED")


def test_outputs_are_group_shared_not_world_writable(tmp_path):
    workdir = fresh_clone(str(tmp_path))
    heldout = RunLayout("results/demo").heldout
    result = snakemake(workdir, "--configfile", "demo/config.yaml", "--cores", "2", heldout, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    mode = os.stat(os.path.join(workdir, heldout)).st_mode
    assert not mode & 0o007, oct(mode)  # umask 0007: nothing for others


def file_digests(directory, parts):
    """{relative path: SHA-256} of every file under the given parts of a run directory."""
    from bert_pretraining.files import file_sha256

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
    result = snakemake(workdir, "--configfile", *DEMO_DAG_CONFIGS, "--cores", "2", timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    run = os.path.join(workdir, "results", "demo")
    layout = RunLayout(run)

    def relative(*paths):
        return [os.path.relpath(path, run) for path in paths]

    data = relative(layout.corpus_dir, layout.vocab, layout.bert_config, layout.records_root)
    ours, theirs = file_digests(run, data), file_digests(demo_run.run_dir, data)
    assert sorted(ours) == sorted(theirs)
    assert [path for path in ours if ours[path] != theirs[path]] == [], "the data stages are not reproducible"
    for path in relative(os.path.join(layout.export_dir, "hf/model.safetensors"),
                         os.path.join(layout.export_dir, "tf/bert_model.ckpt.data-00000-of-00001"),
                         layout.eval_json("phase128"), layout.eval_json("phase512")):
        assert file_digests(run, [path]) == file_digests(demo_run.run_dir, [path]), path
