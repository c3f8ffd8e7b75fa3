"""The preparation stage in the workflow: a Finnish corpus with duplicates, as zstd JSON Lines and as Parquet
(documents, not sentences), through `snakemake` to the records, against the same text in BERT's format."""

import json
import os

import pytest
import zstandard

from bert_pretraining.corpus import iter_documents
from bert_pretraining.run_layout import RunLayout
from workflow_helpers import fresh_clone, snakemake, write_yaml

import finnish_corpus

pytestmark = pytest.mark.snakemake


def run_to_records(workdir, name, files, **corpus):
    """Run the workflow up to the records of length 128; the run's directory."""
    config = {
        "run_name": name,
        "corpus": {"files": files, "num_shards": 2, "heldout_fraction": 0.05, **corpus},
        "vocabulary": {"size": 300, "min_frequency": 1},
        "records": {"dupe_factor": 1},
    }
    path = write_yaml(os.path.join(workdir, f"{name}.yaml"), config)
    target = RunLayout(os.path.join("results", name)).records_sidecar(128)
    result = snakemake(workdir, "--configfile", path, "--cores", "2", target, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return os.path.join(workdir, "results", name)


def shards(run_dir):
    corpus = RunLayout(run_dir).corpus_dir
    return {name: open(os.path.join(corpus, name), "rb").read() for name in sorted(os.listdir(corpus)) if name.endswith(".txt")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    workdir = fresh_clone(str(tmp_path_factory.mktemp("prepare_workflow")))
    gold = finnish_corpus.documents(160)
    with_duplicates = finnish_corpus.with_duplicates(gold, every=8)  # 20 exact duplicates
    os.makedirs(os.path.join(workdir, "fi"))
    half = len(with_duplicates) // 2
    for index, part in enumerate((with_duplicates[:half], with_duplicates[half:])):
        stem = os.path.join(workdir, "fi", f"part{index}")
        with open(f"{stem}.jsonl.zst", "wb") as out:
            out.write(zstandard.ZstdCompressor().compress(finnish_corpus.jsonl_text(part).encode("utf-8")))
        finnish_corpus.write_parquet(f"{stem}.parquet", part)
        with open(f"{stem}.txt", "w", encoding="utf-8") as out:
            out.write(finnish_corpus.bert_text(part))
    return {
        "gold": gold,
        "jsonl": run_to_records(workdir, "fi-jsonl", ["fi/*.jsonl.zst"], language="fi"),
        "parquet": run_to_records(workdir, "fi-parquet", ["fi/*.parquet"], language="fi"),
        "bert": run_to_records(workdir, "fi-bert", ["fi/*.txt"]),
        "unsplit": run_to_records(workdir, "fi-unsplit", ["fi/*.jsonl.zst"], language="fi", split_sentences=False),
    }


def records_sidecar(run_dir):
    with open(RunLayout(run_dir).records_sidecar(128), encoding="utf-8") as handle:
        return json.load(handle)


def test_jsonl_and_parquet_give_the_same_shards_with_each_document_once(runs):
    assert shards(runs["jsonl"]) == shards(runs["parquet"])
    layout = RunLayout(runs["jsonl"])
    documents = list(iter_documents([os.path.join(layout.corpus_dir, name) for name in shards(runs["jsonl"])]))
    assert sorted(map(tuple, documents)) == sorted(map(tuple, runs["gold"]))
    with open(layout.corpus_statistics, encoding="utf-8") as handle:
        statistics = json.load(handle)
    assert statistics["total"]["duplicates"] == 20 and statistics["total"]["kept"] == len(runs["gold"])
    assert [entry["format"] for entry in statistics["files"]] == ["jsonl", "jsonl"]


def test_documents_give_about_as_many_records_as_sentences_and_real_next_sentence_pairs(runs):
    split, bert, unsplit = (records_sidecar(runs[name]) for name in ("jsonl", "bert", "unsplit"))
    assert split["num_instances"] == pytest.approx(bert["num_instances"], rel=0.02)
    # Google's algorithm makes about half the next-sentence pairs random (more for documents this short);
    # a single-sentence document would make all of its pairs random.
    assert 0.4 < split["random_next_instances"] / split["num_instances"] < 0.65
    # Unsplit text (one "sentence" per paragraph) gives fewer instances.
    assert unsplit["num_instances"] < 0.9 * split["num_instances"]
