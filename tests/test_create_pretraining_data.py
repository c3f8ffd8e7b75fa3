"""create_pretraining_data.py and summarize_records.py end to end, as commands."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from bert_pretraining.files import file_sha256
from bert_pretraining.records_sidecar import read_records_sidecar
from bert_pretraining.tokenization import train_vocabulary, vocab_sha256
from records_reader import count_records, read_examples
from synthetic_corpus import write_random_corpus

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
WORDS = "Revenue grew in the quarter , the bank said ; Fortum and Nokia shares fell 4 % on Monday .".split()


def run(script, *args):
    return subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True)


def write_corpus(path, num_documents, seed):
    return write_random_corpus(
        path, WORDS, num_documents=num_documents, seed=seed, sentences=(1, 12), words_per_sentence=(3, 18)
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cpd")
    write_corpus(directory / "a.txt", 40, seed=1)
    write_corpus(directory / "b.txt", 40, seed=2)
    train_vocabulary([str(directory / "a.txt"), str(directory / "b.txt")], str(directory / "vocab.txt"),
                     vocab_size=120, min_frequency=1)
    return directory


def google_flags(workspace, output, *extra):
    return (
        f"--input_file={workspace / 'a.txt'},{workspace / 'b*.txt'}",
        f"--output_file={output}",
        f"--vocab_file={workspace / 'vocab.txt'}",
        "--do_lower_case=false",
        "--max_seq_length=32",
        "--max_predictions_per_seq=5",
        "--random_seed=7",
        "--dupe_factor=2",
        "--masked_lm_prob=0.15",
        "--short_seq_prob=0.1",
        *extra,
    )


def test_end_to_end_is_deterministic(workspace, tmp_path):
    first, second = tmp_path / "one.tfrecord", tmp_path / "two.tfrecord"
    result = run("create_pretraining_data.py", *google_flags(workspace, first, f"--stats_file={tmp_path / 'one.json'}"))
    assert result.returncode == 0, result.stderr
    assert run("create_pretraining_data.py", *google_flags(workspace, second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["one.json", "one.tfrecord", "two.tfrecord"]

    stats = json.loads((tmp_path / "one.json").read_text())
    assert stats["num_instances"] == count_records(str(first)) > 50
    # Each file's size and digest, as written: what check_<phase> and the repair compare it with.
    assert stats["files"] == [{"file": "one.tfrecord", "num_instances": stats["num_instances"],
                               "bytes": first.stat().st_size, "sha256": file_sha256(str(first))}]
    assert stats["vocab_sha256"] == vocab_sha256(str(workspace / "vocab.txt"))
    assert (stats["max_seq_length"], stats["max_predictions_per_seq"], stats["dupe_factor"]) == (32, 5, 2)
    assert stats["do_lower_case"] is False and stats["do_whole_word_mask"] is False and stats["random_seed"] == 7
    assert sum(stats["sequence_length_histogram"].values()) == stats["num_instances"]
    assert sum(stats["masked_positions_histogram"].values()) == stats["num_instances"]
    assert stats["single_sentence_documents"]["kept"] > 0
    assert stats["documents"] == 80
    assert all(len(e["input_ids"]) == 32 for e in read_examples(str(first)))

    changed = run("create_pretraining_data.py", *google_flags(workspace, second, "--random_seed=8"))
    assert changed.returncode == 0 and first.read_bytes() != second.read_bytes()


def test_round_robin_over_outputs_and_absl_spellings(workspace, tmp_path):
    single = tmp_path / "single.tfrecord"
    outputs = [tmp_path / f"part{i}.tfrecord" for i in range(3)]
    assert run("create_pretraining_data.py", *google_flags(workspace, single)).returncode == 0
    result = run("create_pretraining_data.py", *google_flags(workspace, ",".join(map(str, outputs))),
                 f"--stats_file={tmp_path / 'parts.json'}")
    assert result.returncode == 0, result.stderr
    parts = [list(read_examples(str(path))) for path in outputs]
    everything = list(read_examples(str(single)))
    assert [len(p) for p in parts] == [len(everything[i::3]) for i in range(3)]
    for i in range(3):
        assert parts[i] == everything[i::3]
    stats = json.loads((tmp_path / "parts.json").read_text())
    assert [f["num_instances"] for f in stats["files"]] == [len(p) for p in parts]

    # --nodo_lower_case, -flag and --flag value spellings mean the same.
    absl = tmp_path / "absl.tfrecord"
    flags = [f for f in google_flags(workspace, absl) if not f.startswith("--do_lower_case")]
    flags = ["-" + flags[0][2:], *flags[1:], "--nodo_lower_case", "--do_whole_word_mask", "--random_seed", "7"]
    assert run("create_pretraining_data.py", *flags).returncode == 0
    whole_word = tmp_path / "ww.tfrecord"
    assert run("create_pretraining_data.py", *google_flags(workspace, whole_word, "--do_whole_word_mask=true")).returncode == 0
    assert absl.read_bytes() == whole_word.read_bytes()


def test_boolean_flags_take_absl_spellings():
    parse_args = runpy.run_path(str(SCRIPTS / "create_pretraining_data.py"), run_name="not_main")["parse_args"]
    required = ["--input_file=a.txt", "--output_file=a.tfrecord", "--vocab_file=vocab.txt"]
    for text, value in [("true", True), ("True", True), ("t", True), ("1", True),
                        ("false", False), ("FALSE", False), ("f", False), ("0", False)]:
        assert parse_args([*required, f"--do_lower_case={text}"]).do_lower_case is value, text
        assert parse_args([*required, "--do_whole_word_mask", text]).do_whole_word_mask is value, text
    assert parse_args([*required, "--nodo_lower_case", "--do_whole_word_mask"]).do_lower_case is False
    assert parse_args([*required, "-nodo_lower_case"]).do_lower_case is False
    assert parse_args(required).do_lower_case is True and parse_args(required).do_whole_word_mask is False


def test_summarize_records(workspace, tmp_path):
    for part in ("shard_00000", "shard_00001", "heldout"):
        result = run("create_pretraining_data.py",
                     *google_flags(workspace, tmp_path / f"{part}.tfrecord", f"--stats_file={tmp_path / part}.json"))
        assert result.returncode == 0, result.stderr
    result = run("summarize_records.py", "--stats", tmp_path / "shard_00000.json", tmp_path / "shard_00001.json",
                 "--heldout_stats", tmp_path / "heldout.json", "--output", tmp_path / "records.json")
    assert result.returncode == 0, result.stderr
    sidecar = read_records_sidecar(str(tmp_path / "records.json"))
    counts = [count_records(str(tmp_path / f"{p}.tfrecord")) for p in ("shard_00000", "shard_00001", "heldout")]
    assert sidecar["num_instances"] == counts[0] + counts[1]
    assert sidecar["files"][1]["file"] == "shard_00001.tfrecord"
    assert sidecar["heldout"]["num_instances"] == counts[2]

    other = json.loads((tmp_path / "shard_00001.json").read_text())
    other["vocab_sha256"] = "f" * 64
    (tmp_path / "shard_00001.json").write_text(json.dumps(other))
    result = run("summarize_records.py", "--stats", tmp_path / "shard_00000.json", tmp_path / "shard_00001.json",
                 "--output", tmp_path / "records.json")
    assert result.returncode == 2 and "shard_00001.json: vocab_sha256 is ffff" in result.stderr


# --- bad inputs: exit status 2, a message naming the file or flag, outputs kept ------------


def bad_inputs(workspace, tmp):
    (tmp / "empty.txt").write_text("")
    (tmp / "blank.txt").write_text("\n \n\n")
    (tmp / "latin1.txt").write_bytes("Good line.\nS\u00e4hk\u00f6 Oy\n".encode("latin-1"))
    (tmp / "novocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\nword\n")
    vocab = f"--vocab_file={workspace / 'vocab.txt'}"
    text = f"--input_file={workspace / 'a.txt'}"
    return {
        "unmatched glob": ([f"--input_file={tmp / 'missing*.txt'}", vocab], "--input_file: the pattern"),
        "unmatched glob, what was expected": ([f"--input_file={tmp / 'missing*.txt'}", vocab],
                                              "; expected plain-text corpus files"),
        "empty file": ([f"--input_file={tmp / 'empty.txt'}", vocab], "empty.txt: the input file is empty"),
        "blank file": ([f"--input_file={tmp / 'blank.txt'}", vocab], "blank.txt: the input file contains no text"),
        "not utf-8": ([f"--input_file={workspace / 'a.txt'},{tmp / 'latin1.txt'}", vocab],
                      "latin1.txt:2: not valid UTF-8"),
        "no special tokens": ([text, f"--vocab_file={tmp / 'novocab.txt'}"],
                              "novocab.txt: the vocabulary lacks the special token(s) [SEP] [MASK]"),
        "missing vocab": ([text, f"--vocab_file={tmp / 'nope.txt'}"], "nope.txt: vocabulary file does not exist"),
        "too many predictions": ([text, vocab, "--max_seq_length=32", "--max_predictions_per_seq=30"],
                                 "--max_predictions_per_seq is 30 but --max_seq_length 32 leaves 29"),
        "short sequence": ([text, vocab, "--max_seq_length=7", "--max_predictions_per_seq=1"],
                           "--max_seq_length is 7; expected at least 8"),
        "bad boolean": ([text, vocab, "--do_lower_case=maybe"], "--do_lower_case"),
    }


def test_bad_inputs_exit_2_and_keep_existing_outputs(workspace, tmp_path):
    output = tmp_path / "out.tfrecord"
    stats = tmp_path / "out.json"
    for name, (flags, message) in bad_inputs(workspace, tmp_path).items():
        output.write_bytes(b"precious records")
        stats.write_text("precious stats")
        result = run("create_pretraining_data.py", *flags, f"--output_file={output}", f"--stats_file={stats}")
        assert result.returncode == 2, name
        assert message in result.stderr, (name, result.stderr)
        assert output.read_bytes() == b"precious records", name
        assert stats.read_text() == "precious stats", name
        leftovers = [f for f in os.listdir(tmp_path) if f.startswith(".")]
        assert not leftovers, (name, leftovers)


def test_bad_inputs_print_one_error_line(workspace, tmp_path):
    flags, message = bad_inputs(workspace, tmp_path)["not utf-8"]
    result = run("create_pretraining_data.py", *flags, f"--output_file={tmp_path / 'x.tfrecord'}")
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in result.stderr


def test_the_records_stage_does_not_import_tensorflow():
    code = (
        "import sys, runpy\n"
        "import bert_pretraining.documents, bert_pretraining.instances, bert_pretraining.pretraining_examples\n"
        "import bert_pretraining.pretraining_data, bert_pretraining.tfrecords, bert_pretraining.records_sidecar\n"
        "for script in ('shard_corpus', 'train_vocab', 'create_pretraining_data', 'summarize_records'):\n"
        f"    runpy.run_path(r'{SCRIPTS}/' + script + '.py', run_name='not_main')\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("whole_word", [False, True])
def test_without_the_c_extension_the_records_are_the_same(workspace, tmp_path, monkeypatch, caplog, whole_word):
    # The fallback when no C compiler was available at install time: the
    # same records and stats, and a warning that says why it is slower.
    from bert_pretraining import pretraining_examples
    from bert_pretraining.instances import InstanceOptions
    from bert_pretraining.pretraining_data import create_pretraining_data

    options = InstanceOptions.with_google_defaults(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2,
                              do_whole_word_mask=whole_word)
    inputs = [str(workspace / "a.txt"), str(workspace / "b.txt")]

    def records(name):
        stats = create_pretraining_data(inputs, [str(tmp_path / f"{name}.tfrecord")], str(workspace / "vocab.txt"),
                                        options, False, 7)
        return (tmp_path / f"{name}.tfrecord").read_bytes(), {k: v for k, v in stats.items() if k != "files"}

    assert pretraining_examples.compiled is not None
    compiled = records("compiled")
    assert "not built" not in caplog.text
    monkeypatch.setattr(pretraining_examples, "compiled", None)
    assert records("python") == compiled
    assert "bert_pretraining._fast_instances is not built" in caplog.text


def test_unsplit_text_is_warned_about_with_the_share_that_never_reaches_training(workspace, tmp_path):
    """The demo corpus with one document per line (what `jq -r .text` gives), given as BERT format."""
    from bert_pretraining.corpus import iter_documents

    demo = Path(__file__).resolve().parents[1] / "demo" / "corpus" / "python-docs-1.txt"
    documents = list(iter_documents([str(demo)]))[:200]
    unsplit, split = tmp_path / "unsplit.txt", tmp_path / "split.txt"
    unsplit.write_text("".join(" ".join(document) + "\n\n" for document in documents), encoding="utf-8")
    split.write_text("".join("\n".join(document) + "\n\n" for document in documents), encoding="utf-8")
    train_vocabulary([str(split)], str(tmp_path / "vocab.txt"), vocab_size=1000, min_frequency=2)

    def records(text):
        return run(
            "create_pretraining_data.py", f"--input_file={text}", f"--output_file={tmp_path / 'out.tfrecord'}",
            f"--vocab_file={tmp_path / 'vocab.txt'}", "--do_lower_case=false", "--max_seq_length=128",
            "--max_predictions_per_seq=20", "--dupe_factor=1",
        )

    warned = records(unsplit)
    assert warned.returncode == 0, warned.stderr
    line = next(line for line in warned.stderr.splitlines() if "looks unsplit" in line)
    assert " WARNING " in line and "unsplit.txt" in line and "corpus.split_sentences: true" in line
    lost = int(line.split("the text looks unsplit: ")[1].split("%")[0])
    single = int(line.split("are cut), and ")[1].split("%")[0])
    assert lost > 20 and single == 100
    quiet = records(split)
    assert quiet.returncode == 0 and "looks unsplit" not in quiet.stderr
