"""The status command on runs in progress, failed and finished, without TensorFlow."""

import json
import os
import subprocess
import sys
import time

from bert_pretraining.run_layout import RunLayout
from bert_pretraining.settings import load_settings
from bert_pretraining.status import format_status, run_status
from workflow_helpers import DEMO_DAG_CONFIGS, REPO, write_yaml


def demo_config(tmp_path):
    """The demo's settings with the results under tmp_path, and the config file that says so."""
    path = write_yaml(tmp_path / "config.yaml", {"results_dir": str(tmp_path / "results")})
    files = [os.path.join(REPO, config) for config in DEMO_DAG_CONFIGS]
    return load_settings([*files, str(path)], os.path.join(REPO, "config.yaml")), path


def touch_checkpoint(run, phase, step):
    layout = RunLayout(run)
    os.makedirs(layout.phase_dir(phase), exist_ok=True)
    for path in layout.checkpoint_files(phase, step).values():
        open(path, "w").close()


def write_log(run, phase, end, age_seconds):
    path = RunLayout(run).log("pretrain", phase=phase, step=end)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write("INFO step ...\n")
    then = time.time() - age_seconds
    os.utime(path, (then, then))


def test_in_progress_and_failed_segments(tmp_path):
    config, _ = demo_config(tmp_path)
    run = config.run_dir
    touch_checkpoint(run, "phase128", 100)
    touch_checkpoint(run, "phase128", 150)
    write_log(run, "phase128", 100, 3600)
    write_log(run, "phase128", 200, 5)
    with open(config.layout.metrics("phase128"), "w") as handle:
        handle.write(json.dumps({"step": 150, "loss": 6.5, "mlm_accuracy": 0.1, "sequences_per_second": 64.0,
                                 "tokens_per_second": 8192.0, "steps_per_second": 2.0}) + "\n")
    status = run_status(config)
    states = [(row["phase"], row["end_step"], row["state"]) for row in status["segments"]]
    assert states == [("phase128", 100, "done"), ("phase128", 200, "running"), ("phase128", 300, "pending"),
                      ("phase512", 360, "pending")]
    assert status["newest_checkpoint_step"] == 150
    assert status["eta_seconds"] == (360 - 150) / 2.0
    text = format_status(status)
    assert "running" in text and "loss 6.5000" in text and "0:01:45" in text
    # The line has the old name mlm_accuracy (a run logged before the names were Google's).
    assert "latest log (step 150): loss 6.5000, masked-LM accuracy 0.1000, sequences/s 64.0, tokens/s 8192" in text

    write_log(run, "phase128", 200, 3600)  # the log went quiet without a final checkpoint
    assert run_status(config)["segments"][1]["state"] == "failed"


def test_held_out_accuracy_is_shown_beside_its_baseline(tmp_path):
    config, _ = demo_config(tmp_path)
    os.makedirs(config.layout.phase_dir("phase512"))
    with open(config.layout.eval_json("phase512"), "w") as handle:
        json.dump({"step": 360, "masked_lm_accuracy": 0.2, "masked_lm_baseline_accuracy": 0.05,
                   "masked_lm_baseline_token": "the", "next_sentence_accuracy": 0.75}, handle)
    text = format_status(run_status(config))
    assert ("held-out phase512 (step 360): masked-LM accuracy 0.2000, 4.0x the baseline 0.0500 (always 'the'); "
            "next-sentence accuracy 0.7500") in text


def test_status_script_does_not_import_tensorflow(tmp_path):
    _, path = demo_config(tmp_path)
    probe = (
        "import runpy, sys; sys.argv = ['status.py', '--configfile', *%r, %r, '--json'];"
        "runpy.run_path(%r, run_name='__main__')" % (DEMO_DAG_CONFIGS, str(path), os.path.join(REPO, "workflow/scripts/status.py"))
    )
    checker = probe.replace("runpy.run_path", "import atexit; atexit.register(lambda: print('TF' if 'tensorflow' in sys.modules else 'NO_TF', file=sys.stderr)); runpy.run_path")
    result = subprocess.run([sys.executable, "-c", checker], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["finished"] is False
    assert "NO_TF" in result.stderr


def test_inputs_changed_since_a_checkpoint_are_told_by_content_not_mtime(tmp_path):
    from bert_pretraining.checkpoints import MANIFEST_SUFFIX
    from bert_pretraining.files import file_sha256
    from bert_pretraining.prepare import prepare_file
    from bert_pretraining.status import run_input_changes

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("One sentence of the first document here.\nAnd its second one.\n\nA second document, long enough.\n")
    path = write_yaml(tmp_path / "config.yaml", {"results_dir": str(tmp_path / "results"), "corpus": {"files": [str(corpus)]}})
    files = [os.path.join(REPO, config) for config in DEMO_DAG_CONFIGS]
    config = load_settings([*files, str(path)], os.path.join(REPO, "config.yaml"))
    run = config.run_dir
    os.makedirs(config.layout.prepared_dir)
    prepare_file(str(corpus), config.corpus, config.layout.prepared_text(0), config.layout.prepared_statistics(0))
    assert run_input_changes(config) is None  # prepared, no checkpoint yet
    touch_checkpoint(run, "phase128", 200)
    touch_checkpoint(run, "phase128", 400)
    assert run_input_changes(config) is None
    later = time.time() + 60
    os.utime(corpus, (later, later))
    assert run_input_changes(config) is None  # the same content with a newer mtime: no alarm
    original = corpus.read_bytes()
    corpus.write_bytes(original + b"\nA third document appended after the run started.\n")
    changes = run_input_changes(config)
    assert changes.since_step == 200 and changes.changed == [f"corpus file {corpus} has another content than the preparation read"]
    text = format_status(run_status(config))
    assert f"inputs changed since step 200: corpus file {corpus}" in text and "new run_name" in text
    corpus.write_bytes(original)  # restored, with yet another mtime
    assert run_input_changes(config) is None
    # A checkpoint records the vocabulary it was trained with: another vocab.txt is a change since that step.
    open(config.layout.vocab, "w").write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nnew\n")
    with open(config.layout.checkpoint("phase128", 400) + MANIFEST_SUFFIX, "w") as manifest:
        json.dump({"inputs": {"vocab_sha256": "0" * 64}}, manifest)
    changes = run_input_changes(config)
    assert changes.since_step == 400 and changes.changed == ["the vocabulary (vocab.txt)"]
    with open(config.layout.checkpoint("phase128", 400) + MANIFEST_SUFFIX, "w") as manifest:
        json.dump({"inputs": {"vocab_sha256": file_sha256(config.layout.vocab)}}, manifest)
    assert run_input_changes(config) is None


def test_the_corpus_line_counts_kept_and_dropped_documents_and_bad_records_by_reason(tmp_path):
    config, _ = demo_config(tmp_path)
    assert run_status(config)["corpus"] is None  # not sharded yet: no corpus line
    assert "corpus:" not in format_status(run_status(config))
    total = {"bytes": 776558, "documents_read": 4350, "too_short": 2, "duplicates": 1, "kept": 4347,
             "sentences": 33810, "characters": 2852538, "sentences_cut": 40, "files": 2,
             "bad_records": {"missing_field": 1, "invalid_json": 3}, "heldout": 87, "single_sentence_documents": 119}
    os.makedirs(config.layout.corpus_dir)
    with open(config.layout.corpus_statistics, "w") as handle:
        json.dump({"total": total, "words_per_sentence": {"1": 33810}, "shard_documents": [4260], "files": []}, handle)
    lines = format_status(run_status(config)).splitlines()
    assert lines[1] == (
        "corpus: 4,347 documents kept of 4,350 read (dropped: 2 too short, 1 duplicates, "
        "4 bad records: invalid_json 3, missing_field 1); 33,810 sentences, 2.9 M characters, 2 files"
    )


def test_a_cut_record_file_is_a_warning_with_the_repair_command(tmp_path):
    from synthetic_records import make_records

    config, _ = demo_config(tmp_path)
    assert run_status(config)["damaged_records"] == []  # no records yet: nothing to compare
    shard = make_records(config.records_dir(128), files=2, per_file=20)[1]
    assert run_status(config)["damaged_records"] == []
    size = os.path.getsize(shard)
    with open(shard, "r+b") as handle:
        handle.truncate(size // 2)
    assert (
        f"WARNING: {shard} has {size // 2:,} bytes, but records.json lists {size:,}; the file is cut or was changed; "
        "remake it with make repair-records CONFIG=\"<the run's --configfile files>\""
    ) in format_status(run_status(config)).splitlines()
