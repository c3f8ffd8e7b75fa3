"""The corpus preparation: formats, compression, normalisation, sentence splitting, filters, bad records,
deduplication and the statistics, on small corpora made here (tests/finnish_corpus.py, the demo corpus)."""

import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from bert_pretraining.corpus import iter_documents, shard_corpus
from bert_pretraining.corpus_sources import format_of, read_documents, uncompressed_size
from bert_pretraining.errors import ConfigError, CorpusError
from bert_pretraining.prepare import check_files, corpus_sample_warnings, corpus_statistics, prepare_file
from bert_pretraining.sentences import cut_long, document_sentences, normalize, sentence_splitter
from bert_pretraining.settings import corpus_settings

import finnish_corpus

REPO = Path(__file__).resolve().parents[1]
COMPRESSORS = {
    "": lambda data: data,
    ".gz": lambda data: gzip.compress(data, mtime=0),
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
}


def settings(**keys):
    return corpus_settings({"files": ["unused"], **keys})


def prepared_documents(path, **keys) -> list[list[str]]:
    """Prepare one file with the given corpus keys; its documents as lists of sentences."""
    out = Path(str(path) + ".prepared")
    prepare_file(str(path), settings(**keys), str(out), str(out) + ".json")
    return list(iter_documents([str(out)]))


# --- formats and compression ------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [("a.txt", "bert"), ("a.TXT.gz", "bert"), ("crawl.jsonl.zst", "jsonl"), ("x.ndjson.xz", "jsonl"),
     ("x.json.bz2", "jsonl"), ("t.parquet", "parquet"), ("notes", None), ("a.csv.gz", None)],
)
def test_the_format_comes_from_the_name_after_the_compression_suffix(name, expected):
    assert format_of(name) == expected
    assert format_of(name, "document_per_line") == "document_per_line"


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
@pytest.mark.parametrize("kind", ["jsonl", "document_per_line", "bert"])
def test_every_format_and_compression_gives_the_gold_sentences(tmp_path, kind, suffix):
    gold = finnish_corpus.documents(20)
    text = {
        "jsonl": finnish_corpus.jsonl_text(gold),
        "document_per_line": "".join(" ".join(d) + "\n" for d in gold),
        "bert": finnish_corpus.bert_text(gold),
    }[kind]
    name = {"jsonl": "c.jsonl", "document_per_line": "c.lines", "bert": "c.txt"}[kind]
    path = tmp_path / (name + suffix)
    path.write_bytes(COMPRESSORS[suffix](text.encode("utf-8")))
    fmt = "document_per_line" if kind == "document_per_line" else "auto"
    assert prepared_documents(path, format=fmt, language="fi") == gold


def test_parquet_is_read_by_row_groups_and_a_nested_json_field_by_its_path(tmp_path):
    gold = finnish_corpus.documents(30)
    finnish_corpus.write_parquet(tmp_path / "c.parquet", gold, row_group_size=7)
    assert prepared_documents(tmp_path / "c.parquet", language="fi") == gold
    nested = tmp_path / "n.jsonl"
    nested.write_text("".join(json.dumps({"doc": {"body": " ".join(d)}}) + "\n" for d in gold), encoding="utf-8")
    assert prepared_documents(nested, language="fi", text_field="doc.body") == gold


def test_document_per_file_takes_paragraphs_as_boundaries(tmp_path):
    path = tmp_path / "story.md"
    path.write_text("Otsikko tässä\n\nEnsimmäinen lause. Toinen lause.\nKolmas lause.\n", encoding="utf-8")
    assert prepared_documents(path, format="document_per_file", language="fi") == [
        ["Otsikko tässä", "Ensimmäinen lause.", "Toinen lause.", "Kolmas lause."]
    ]


def test_uncompressed_size_is_estimated_from_the_first_bytes(tmp_path):
    text = finnish_corpus.jsonl_text(finnish_corpus.documents(100)).encode("utf-8")
    for suffix, compress in COMPRESSORS.items():
        path = tmp_path / f"c.jsonl{suffix}"
        path.write_bytes(compress(text))
        assert uncompressed_size(str(path)) == pytest.approx(len(text), rel=0.01), suffix


# --- bad records --------------------------------------------------------------


BAD_JSONL = (
    '{"text": "Hyvä ensimmäinen asiakirja, jossa on tarpeeksi tekstiä."}\n'
    '{"text": "puuttuva lainausmerkki}\n'
    '{"body": "ei text-kenttää"}\n'
    '{"text": 42}\n'
).encode("utf-8") + b'{"text": "rikki \xff tavu"}\n' + '{"text": "Viimeinen hyvä asiakirja, myös riittävän pitkä."}\n'.encode()


@pytest.mark.parametrize(
    "line, message",
    [(2, r"c\.jsonl:2: not a JSON object"), (3, r"c\.jsonl:3: no field 'text' \(corpus\.text_field\); the record has body"),
     (4, r"c\.jsonl:4: the field 'text' \(corpus\.text_field\) holds int '42'; expected a string"),
     (5, r"c\.jsonl:5: not valid UTF-8 \(byte 0xff")],
)
def test_a_bad_record_fails_naming_file_line_and_what_was_expected(tmp_path, line, message):
    lines = BAD_JSONL.split(b"\n")
    path = tmp_path / "c.jsonl"
    path.write_bytes(lines[0] + b"\n" + lines[line - 1] + b"\n")
    message = message.replace(f":{line}:", ":2:")
    with pytest.raises(CorpusError, match=message):
        prepared_documents(path, language="fi")
    assert not (tmp_path / "c.jsonl.prepared").exists()


def test_skipped_bad_records_are_counted_by_reason(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(BAD_JSONL)
    documents = prepared_documents(path, language="fi", on_bad_record="skip")
    assert len(documents) == 2
    stats = json.loads((tmp_path / "c.jsonl.prepared.json").read_text())
    assert stats["bad_records"] == {"invalid_json": 1, "missing_field": 1, "not_a_string": 1, "invalid_utf8": 1}
    assert stats["documents_read"] == 2 and stats["prepared"] == 2


def test_parquet_without_the_column_names_the_columns_it_has(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["Teksti on tässä sarakkeessa eikä muualla."]}), str(tmp_path / "c.parquet"))
    with pytest.raises(CorpusError, match=r"c\.parquet: no column 'text' .*columns are content"):
        prepared_documents(tmp_path / "c.parquet", language="fi")
    assert prepared_documents(tmp_path / "c.parquet", language="fi", on_bad_record="skip") == []


def test_a_compressed_file_without_its_suffix_is_named_as_such(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(gzip.compress(b"Lause yksi.\nLause kaksi.\n"))
    with pytest.raises(CorpusError, match=r"c\.txt:1: not valid UTF-8 .*starts like gzip-compressed data"):
        prepared_documents(path)


@pytest.mark.parametrize("suffix, name", [(".gz", "gzip"), (".bz2", "bzip2"), (".xz", "xz"), (".zst", "zstd")])
def test_a_damaged_compressed_file_is_named(tmp_path, suffix, name):
    data = COMPRESSORS[suffix](finnish_corpus.jsonl_text(finnish_corpus.documents(50)).encode())
    path = tmp_path / f"c.jsonl{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match=rf"c\.jsonl\{suffix}: the compressed data is damaged or cut off .*complete {name} file"):
        prepared_documents(path, language="fi")


def test_plan_time_checks_name_the_file_and_the_setting(tmp_path):
    (tmp_path / "notes").write_text("x\n")
    (tmp_path / "c.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match=r"notes: the file name does not tell the corpus format.*corpus\.format"):
        check_files([str(tmp_path / "notes")], settings())
    assert check_files([str(tmp_path / "notes"), str(tmp_path / "c.jsonl")], settings(on_bad_record="skip", language="fi")) == [
        str(tmp_path / "c.jsonl")
    ]
    with pytest.raises(ConfigError, match=r"corpus\.language is not set, but .*c\.jsonl \(jsonl\) is split"):
        check_files([str(tmp_path / "c.jsonl")], settings())
    assert check_files([str(tmp_path / "c.jsonl")], settings(split_sentences=False)) == [str(tmp_path / "c.jsonl")]


def test_a_missing_optional_package_names_the_extra(monkeypatch):
    from bert_pretraining import corpus_sources

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(CorpusError, match=r"needs the Python package pyarrow.*pip install 'bert-pretraining\[parquet\]'"):
        corpus_sources.require("pyarrow")


# --- normalisation, splitting, filters ------------------------------------------


def test_normalisation_composes_removes_controls_and_collapses_whitespace():
    raw = "Cafe\u0301\x00 ja\u00a0\t  tee.\r\nToinen\x07 rivi.\rKolmas.\x85"
    assert normalize(raw) == "Café ja\u00a0\t  tee.\nToinen rivi.\nKolmas."
    assert document_sentences([raw], None, 500) == (["Café ja tee.", "Toinen rivi.", "Kolmas."], 0)


@given(st.text(alphabet=st.sampled_from("ab c"), max_size=300).map(lambda t: " ".join(t.split())), st.integers(1, 40))
def test_cut_long_gives_short_pieces_that_join_back(sentence, limit):
    pieces = cut_long(sentence, limit)
    assert all(0 < len(piece) <= limit for piece in pieces)
    assert "".join(pieces).replace(" ", "") == sentence.replace(" ", "")
    assert len(" ".join(pieces)) <= len(sentence) + len(pieces)


def test_cut_long_takes_linear_time_on_a_50_mb_line():
    """0.1 s here; cutting by slicing off the rest copied it at every piece: about 5 minutes."""
    sentence = " ".join(["sana"] * 10_000_000)
    started = time.perf_counter()
    pieces = cut_long(sentence, 500)
    assert time.perf_counter() - started < 10
    assert len(pieces) == 100_000 and pieces[-1] == " ".join(["sana"] * 100)


@pytest.mark.parametrize(
    "language, text, sentences",
    [
        ("en", "Dr. Smith paid $3.50 for it, i.e. too much. Then he left!",
         ["Dr. Smith paid $3.50 for it, i.e. too much.", "Then he left!"]),
        ("en", 'She said: "We are done." Nobody answered.', ['She said: "We are done."', "Nobody answered."]),
        ("fi", "Kokous alkaa klo 12.30 ja päättyy n. klo 14. Tervetuloa!",
         ["Kokous alkaa klo 12.30 ja päättyy n. klo 14.", "Tervetuloa!"]),
        ("fi", "Juhlat pidetään 5. toukokuuta. Esityslistalla on mm. talousarvio.",
         ["Juhlat pidetään 5. toukokuuta.", "Esityslistalla on mm. talousarvio."]),
        ("fi", "Hän sanoi: ”Tulen huomenna.” Sitten hän lähti.", ["Hän sanoi: ”Tulen huomenna.”", "Sitten hän lähti."]),
        # sentencex alone cuts before a word that opens with ä (docs/sentence-splitting.md)
        ("fi", "Ehdokas valittiin vasta 3. äänestyskierroksella. Tulos oli selvä.",
         ["Ehdokas valittiin vasta 3. äänestyskierroksella.", "Tulos oli selvä."]),
        ("fi", "Hän huusi: ”Tule!” äiti vastasi heti.", ["Hän huusi: ”Tule!” äiti vastasi heti."]),
    ],
)
def test_sentences_are_split_by_the_languages_rules(language, text, sentences):
    assert document_sentences([text], sentence_splitter(language), 500)[0] == sentences


def test_a_huge_line_is_cut_and_short_documents_are_dropped(tmp_path):
    path = tmp_path / "c.jsonl"
    words = " ".join(f"sana{i}" for i in range(200_000))  # 1.5 MB, no sentence end
    path.write_text(json.dumps({"text": words}) + "\n" + json.dumps({"text": "Liian lyhyt."}) + "\n")
    [document] = prepared_documents(path, language="fi", max_sentence_chars=300)
    assert max(map(len, document)) <= 300 and " ".join(document) == words
    stats = json.loads((tmp_path / "c.jsonl.prepared.json").read_text())
    assert stats["too_short"] == 1 and stats["sentences_cut"] == 1


# --- sharding prepared files: duplicates, statistics, same shards from every form ----------


def prepare_and_shard(tmp_path, name, files, **keys):
    prepared, statistics = [], []
    for index, path in enumerate(files):
        out = tmp_path / name / f"file_{index:05d}.txt"
        out.parent.mkdir(exist_ok=True)
        prepare_file(str(path), settings(**keys), str(out), str(out) + ".json")
        prepared.append(str(out))
        statistics.append(json.loads(Path(str(out) + ".json").read_text()))
    summary = shard_corpus(prepared, str(tmp_path / name / "shards"), 3, 0.1, seed=1, deduplicate=True)
    shards = {p.name: p.read_bytes() for p in sorted((tmp_path / name / "shards").iterdir())}
    return shards, corpus_statistics(statistics, summary)


def test_jsonl_parquet_and_compressed_text_give_the_same_shards_without_duplicates(tmp_path):
    gold = finnish_corpus.documents(60)
    half = len(gold) // 2
    # Two files; the second repeats some documents of the first and of itself.
    parts = [gold[:half] + gold[:5], gold[half:] + gold[2:4] + gold[half: half + 3]]
    jsonl, parquet, text = [], [], []
    for index, part in enumerate(parts):
        jsonl.append(tmp_path / f"p{index}.jsonl.zst")
        jsonl[-1].write_bytes(zstandard.ZstdCompressor().compress(finnish_corpus.jsonl_text(part).encode()))
        parquet.append(tmp_path / f"p{index}.parquet")
        finnish_corpus.write_parquet(parquet[-1], part)
        text.append(tmp_path / f"p{index}.txt.gz")
        text[-1].write_bytes(gzip.compress(finnish_corpus.bert_text(part).encode(), mtime=0))
    from_jsonl, stats = prepare_and_shard(tmp_path, "jsonl", jsonl, language="fi")
    from_parquet, _ = prepare_and_shard(tmp_path, "parquet", parquet, language="fi")
    from_text, _ = prepare_and_shard(tmp_path, "text", text, language="fi")
    assert from_jsonl == from_parquet == from_text
    sharded = [d for shard in from_jsonl.values() for d in iter_text_documents(shard)]
    assert sorted(map(tuple, sharded)) == sorted(map(tuple, gold))  # each document once, as written
    total = stats["total"]
    assert (total["documents_read"], total["duplicates"], total["kept"]) == (70, 10, 60)
    assert [f["duplicates"] for f in stats["files"]] == [5, 5]
    assert total["sentences"] == sum(map(len, gold))
    assert sum(stats["words_per_sentence"].values()) == total["sentences"]


def iter_text_documents(data: bytes) -> list[list[str]]:
    return [block.split("\n") for block in data.decode().split("\n\n") if block.strip()]


def test_the_same_inputs_give_byte_identical_shards_and_compression_changes_nothing(tmp_path):
    text = finnish_corpus.jsonl_text(finnish_corpus.documents(40)).encode()
    (tmp_path / "c.jsonl").write_bytes(text)
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(text, mtime=0))
    first, _ = prepare_and_shard(tmp_path, "one", [tmp_path / "c.jsonl.gz"], language="fi")
    second, _ = prepare_and_shard(tmp_path, "two", [tmp_path / "c.jsonl.gz"], language="fi")
    plain, _ = prepare_and_shard(tmp_path, "plain", [tmp_path / "c.jsonl"], language="fi")
    assert first == second == plain


def test_prepare_script_reports_a_bad_record_in_one_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "ok, tämä on hyvä rivi ja tarpeeksi pitkä"}\n[1, 2\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(REPO / "workflow/scripts/prepare_corpus.py"), "--input", str(path),
         "--language=fi", "--output", str(tmp_path / "out.txt"),
         "--statistics", str(tmp_path / "out.json")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert result.returncode == 2
    assert "error: " in result.stderr and "c.jsonl:2: not a JSON object" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.txt").exists()


def test_text_given_as_sentences_that_looks_unsplit_is_said_at_plan_time(tmp_path):
    gold = finnish_corpus.documents(40)
    unsplit, split = tmp_path / "unsplit.txt", tmp_path / "split.txt"
    unsplit.write_text("".join(" ".join(document) + "\n\n" for document in gold), encoding="utf-8")
    split.write_text(finnish_corpus.bert_text(gold), encoding="utf-8")
    [warning] = corpus_sample_warnings([str(unsplit), str(split)], settings())
    assert warning.startswith(f"{unsplit} is read as BERT format") and "100% of its 40 documents are a single line" in warning
    assert "corpus.format: document_per_line" in warning and "corpus.split_sentences: true" in warning
    long_lines = tmp_path / "long.txt"
    long_lines.write_text("\n".join(" ".join(d * 5) for d in gold) + "\n", encoding="utf-8")  # one document, long lines
    [warning] = corpus_sample_warnings([str(long_lines)], settings())
    assert "100% of the text is in lines longer than corpus.max_sentence_chars (500)" in warning
    assert corpus_sample_warnings([str(unsplit)], settings(split_sentences=True, language="fi")) == []


def test_the_plan_describes_the_corpus_and_warns_before_anything_runs(tmp_path):
    gold = finnish_corpus.documents(40)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "unsplit.txt").write_text("".join(" ".join(d) + "\n\n" for d in gold), encoding="utf-8")
    (corpus / "dump.jsonl.gz").write_bytes(gzip.compress(finnish_corpus.jsonl_text(gold).encode()))
    config = tmp_path / "mine.yaml"
    config.write_text(json.dumps({"run_name": "planned", "results_dir": str(tmp_path / "results"),
                                  "corpus": {"files": [str(corpus / "*")], "language": "fi", "num_shards": 2}}))
    result = subprocess.run(
        [sys.executable, str(REPO / "workflow/scripts/plan.py"), "--configfile", str(config)],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "corpus: 2 files (1 bert, 1 jsonl gzip); split into sentences by the rules for 'fi'" in result.stdout
    assert f"WARNING: {corpus / 'unsplit.txt'} is read as BERT format" in result.stdout


def test_the_plan_time_sample_reads_lines_not_whole_documents(tmp_path):
    """A file without blank lines is one document: the sample stops after its first lines all the same.

    The end of this file is cut off, so reading the whole document would fail there (and say nothing).
    """
    line = " ".join(["sana"] * 120)  # 599 characters: longer than max_sentence_chars
    data = gzip.compress("".join(f"{index} {line}\n" for index in range(20_000)).encode(), mtime=0)
    path = tmp_path / "no-blank-lines.txt.gz"
    path.write_bytes(data[: len(data) * 9 // 10])
    [warning] = corpus_sample_warnings([str(path)], settings())
    assert "looks unsplit in its first 2000 lines: 100% of the text is in lines longer" in warning
