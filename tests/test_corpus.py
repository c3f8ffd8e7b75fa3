"""Reading BERT-format text, sharding, atomic outputs, progress lines."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bert_pretraining.corpus import (
    choose_heldout,
    iter_documents,
    read_lines,
    shard_corpus,
    shard_name,
)
from bert_pretraining.errors import ConfigError, CorpusError
from bert_pretraining.files import AtomicFile, expand_patterns
from bert_pretraining.prepare import prepare_file
from bert_pretraining.settings import corpus_settings
from bert_pretraining.progress import Progress, format_duration

SCRIPT = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "shard_corpus.py"


def write_corpus(path: Path, num_documents: int, first: int = 0) -> list[list[str]]:
    """Documents with 1-4 numbered sentences each; returns them."""
    documents = []
    for d in range(first, first + num_documents):
        documents.append([f"Document {d} sentence {s}." for s in range(1 + d % 4)])
    path.write_text("".join("\n".join(doc) + "\n\n" for doc in documents), encoding="utf-8")
    return documents


def read_documents(path: Path) -> list[list[str]]:
    return list(iter_documents([str(path)]))


# --- reading ----------------------------------------------------------------


def test_documents_are_separated_by_blank_lines_and_file_ends(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("\ufeffOne.\n  Two.  \n\n\n \t \nThree.\r\nFour.", encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_text("Five.\n", encoding="utf-8")
    assert list(iter_documents([str(a), str(b)])) == [["One.", "Two."], ["Three.", "Four."], ["Five."]]


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\nalso fine\nbroken \xff here\n")
    with pytest.raises(CorpusError, match=r"bad\.txt:3: not valid UTF-8 \(byte 0xff"):
        list(read_lines(str(path)))


def test_missing_file_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="missing.txt"):
        list(read_lines(str(tmp_path / "missing.txt")))


def test_expand_patterns_sorts_and_names_an_unmatched_pattern(tmp_path):
    for name in ("b.txt", "a.txt", "c.txt"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "dir.txt").mkdir()  # a directory is not an input file
    files = expand_patterns([str(tmp_path / "*.txt"), str(tmp_path / "a.txt")], "--input")
    assert files == sorted(files) and len(files) == 3
    with pytest.raises(CorpusError, match=r"--input: the pattern '.*nothing\*\.txt' matches no file.*; expected text"):
        expand_patterns([str(tmp_path / "nothing*.txt")], "--input", what="text", error=CorpusError)
    literal = tmp_path / "report[2020].txt"
    literal.write_text("x\n")
    assert expand_patterns([str(literal)], "--input") == [str(literal)]


def test_expand_patterns_splits_a_comma_separated_flag(tmp_path):
    for name in ("b.txt", "a.txt"):
        (tmp_path / name).write_text("x\n")
    assert expand_patterns(f"{tmp_path / 'b.txt'}, {tmp_path / 'a*'},", "--input_file") == [
        str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
    ]
    with pytest.raises(ConfigError, match="--input_file is empty; expected records"):
        expand_patterns(" , ", "--input_file", what="records", error=ConfigError)


# --- sharding ---------------------------------------------------------------


def test_sharding_keeps_documents_whole_and_is_deterministic(tmp_path):
    corpus = tmp_path / "corpus.txt"
    documents = write_corpus(corpus, 103)
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    summary = shard_corpus([str(corpus)], str(out1), 4, 0.05, seed=7)
    shard_corpus([str(corpus)], str(out2), 4, 0.05, seed=7)

    names = [shard_name(i) for i in range(4)] + ["heldout.txt"]
    for name in names:
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes()
    assert sorted(os.listdir(out1)) == sorted(names)  # no temporary files left

    heldout = read_documents(out1 / "heldout.txt")
    shards = [read_documents(out1 / shard_name(i)) for i in range(4)]
    assert len(heldout) == summary.heldout_documents == round(103 * 0.05)
    assert sorted(heldout + [doc for shard in shards for doc in shard]) == sorted(documents)
    # Round-robin over the training stream: sizes differ by at most one, and
    # training document k is in shard k % 4.
    training = [doc for doc in documents if doc not in heldout]
    for k, doc in enumerate(training):
        assert shards[k % 4][k // 4] == doc
    assert summary.shard_documents == [len(shard) for shard in shards]
    assert summary.single_sentence_documents == sum(1 for doc in documents if len(doc) == 1)


def test_heldout_choice_depends_on_seed_and_holds_out_at_least_one():
    assert choose_heldout(1000, 0.01, 1) == choose_heldout(1000, 0.01, 1)
    assert choose_heldout(1000, 0.01, 1) != choose_heldout(1000, 0.01, 2)
    assert len(choose_heldout(1000, 0.01, 1)) == 10
    assert len(choose_heldout(20, 0.001, 1)) == 1


def test_fewer_documents_than_shards_says_how_many(tmp_path):
    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus, 5)
    with pytest.raises(CorpusError, match=r"5 documents \(1 held out, 4 for training\) but --num_shards is 8"):
        shard_corpus([str(corpus)], str(tmp_path / "out"), 8, 0.1, seed=1)


def test_empty_corpus_is_an_error(tmp_path):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("\n  \n\n")
    with pytest.raises(CorpusError, match="the corpus is empty"):
        shard_corpus([str(corpus)], str(tmp_path / "out"), 1, 0.1, seed=1)


@pytest.mark.parametrize("num_shards, fraction, flag", [(0, 0.1, "--num_shards"), (2, 0.0, "--heldout_fraction")])
def test_bad_arguments_name_the_flag(tmp_path, num_shards, fraction, flag):
    corpus = tmp_path / "c.txt"
    write_corpus(corpus, 10)
    with pytest.raises(ConfigError, match=flag):
        shard_corpus([str(corpus)], str(tmp_path / "out"), num_shards, fraction, seed=1)


def test_a_failing_run_leaves_existing_outputs_alone(tmp_path):
    good, bad = tmp_path / "a.txt", tmp_path / "b.txt"
    write_corpus(good, 20)
    bad.write_bytes(b"ok\n\xc3\x28\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "shard_00000.txt").write_text("precious")
    with pytest.raises(CorpusError, match=r"b\.txt:2"):
        shard_corpus([str(good), str(bad)], str(out), 2, 0.1, seed=1)
    assert os.listdir(out) == ["shard_00000.txt"]
    assert (out / "shard_00000.txt").read_text() == "precious"


def test_many_shards_are_written_in_groups(tmp_path, monkeypatch):
    monkeypatch.setattr("bert_pretraining.corpus.MAX_OPEN_SHARDS", 3)
    corpus = tmp_path / "c.txt"
    documents = write_corpus(corpus, 40)
    summary = shard_corpus([str(corpus)], str(tmp_path / "out"), 7, 0.05, seed=3)
    written = [doc for i in range(7) for doc in read_documents(tmp_path / "out" / shard_name(i))]
    heldout = read_documents(tmp_path / "out" / "heldout.txt")
    assert sorted(written + heldout) == sorted(documents)
    assert sum(summary.shard_documents) == len(written)


def run_script(tmp_path, inputs, *extra):
    statistics = []
    for path in inputs:
        statistics.append(str(path) + ".json")
        prepare_file(str(path), corpus_settings({"files": [str(path)]}), str(tmp_path / "ignored.txt"), statistics[-1])
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--input", *map(str, inputs), "--file_statistics", *statistics,
         "--num_shards", "3", "--heldout_fraction", "0.1", "--seed", "1", "--output_dir", str(tmp_path / "out"),
         "--statistics", str(tmp_path / "out" / "statistics.json"), *extra],
        capture_output=True, text=True,
    )


def test_script_reports_a_missing_input_with_exit_status_2(tmp_path):
    write_corpus(tmp_path / "a.txt", 30)
    missing = tmp_path / "gone.txt"
    statistics = tmp_path / "a.txt.json"
    prepare_file(str(tmp_path / "a.txt"), corpus_settings({"files": ["a"]}), str(tmp_path / "p.txt"), str(statistics))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--input", str(missing), "--file_statistics", str(statistics),
         "--num_shards", "2", "--heldout_fraction", "0.1", "--seed", "1", "--output_dir", str(tmp_path / "out"),
         "--statistics", str(tmp_path / "s.json")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "gone.txt: cannot be read" in result.stderr and result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_script_shards_a_corpus_and_counts_duplicates(tmp_path):
    write_corpus(tmp_path / "a.txt", 30)
    write_corpus(tmp_path / "b.txt", 30, first=25)  # documents 25-29 twice
    result = run_script(tmp_path, [tmp_path / "a.txt", tmp_path / "b.txt"], "--deduplicate")
    assert result.returncode == 0, result.stderr
    assert "single-sentence documents" in result.stderr and "5 duplicates" in result.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["heldout.txt"] + [shard_name(i) for i in range(3)] + ["statistics.json"]
    statistics = json.loads((tmp_path / "out" / "statistics.json").read_text())
    assert [entry["duplicates"] for entry in statistics["files"]] == [0, 5]
    assert statistics["total"]["kept"] == 55 == sum(statistics["shard_documents"]) + statistics["total"]["heldout"]


# --- atomic files and progress ------------------------------------------------


def test_atomic_file_discards_on_error(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with AtomicFile(str(target)) as out:
            out.write("new")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]
    with AtomicFile(str(target)) as out:
        out.write("new")
    assert target.read_text() == "new"


def test_progress_writes_plain_lines_with_eta():
    now = [0.0]
    stream = io.StringIO()
    progress = Progress("records shard_00003", total=50000, unit="documents", rate_unit="docs",
                        interval=10, stream=stream, clock=lambda: now[0], use_bar=False)
    now[0] = 5.0
    progress.update(4000)  # before the interval: nothing written
    assert stream.getvalue() == ""
    now[0] = 12.0
    progress.update(8000)
    line = stream.getvalue().strip()
    assert line == "records shard_00003: 12000/50000 documents (24%), 1000 docs/s, ETA 0:00:38"
    progress.close()
    assert stream.getvalue().strip().splitlines()[-1].endswith("done in 0:00:12")


def test_format_duration():
    assert format_duration(45) == "0:00:45"
    assert format_duration(90061) == "25:01:01"  # hours are not wrapped into days
    assert format_duration(59.6) == "0:01:00"
    assert format_duration(None) == format_duration(float("nan")) == format_duration(float("inf")) == "unknown"
    assert format_duration(None, unknown="") == ""


@given(st.lists(st.integers(0, 40), max_size=200), st.integers(1, 50))
def test_first_occurrences_keeps_the_first_copy_of_each_hash_in_any_number_of_buckets(values, bucket_size):
    import numpy as np

    from bert_pretraining import corpus

    hashes = np.array(values, dtype="<u8")
    expected = [values.index(value) == index for index, value in enumerate(values)]
    original = corpus.DOCUMENTS_PER_DEDUP_BUCKET
    corpus.DOCUMENTS_PER_DEDUP_BUCKET = bucket_size
    try:
        assert corpus.first_occurrences(hashes).tolist() == expected
    finally:
        corpus.DOCUMENTS_PER_DEDUP_BUCKET = original
