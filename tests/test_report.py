"""The run report: report.py on synthetic files (fast), and `snakemake --report`
on the demo run, opened in headless Chromium (slow)."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from workflow_helpers import DEMO_DAG_CONFIGS, REPO, snakemake

from bert_pretraining import report
from bert_pretraining.corpus import shard_corpus
from bert_pretraining.files import write_json
from bert_pretraining.prepare import corpus_statistics, prepare_file
from bert_pretraining.run_layout import REPORT_FILES, RunLayout
from bert_pretraining.settings import corpus_settings

# ---------------------------------------------------------------------------
# Synthetic run directory
# ---------------------------------------------------------------------------

SEGMENTS = [
    {"phase": "phase128", "start": 0, "end": 20},
    {"phase": "phase128", "start": 20, "end": 40},
    {"phase": "phase512", "start": 40, "end": 50},
]


def metric(phase, step, start, end, **extra):
    lr = 1e-3 * (1 - step / (40 if phase == "phase128" else 50))
    record = {
        "loss": 9.0 - step / 10, "masked_lm_loss": 8.0 - step / 10, "next_sentence_loss": 0.7,
        "masked_lm_accuracy": step / 100, "next_sentence_accuracy": 0.5 + step / 200, "time": 1000.0 + step,
        "phase": phase, "step": step, "segment_start": start, "segment_end": end, "run_last_step": 50,
        "learning_rate": lr, "loss_scale": 1.0, "skipped_steps": 0,
        "sequences_per_second": 10.0 * (1 + step % 3), "tokens_per_second": 1280.0 * (1 + step % 3),
        "steps_per_second": 1.0,
    }
    record.update(extra)
    return record


# Two corpus files as people have them: BERT-format text with a document too short
# to keep and a sentence longer than max_sentence_chars (50), and JSON Lines that
# repeat the text's first document and have two bad records.
CORPUS_TEXT = (
    "The first document has a sentence.\nAnd a second sentence.\n\n"
    "Too short.\n\n"
    "This sentence of the third document is much longer than fifty characters.\n\n"
)
CORPUS_JSONL = (
    json.dumps({"text": "The first document has a sentence.\nAnd a second sentence."}) + "\n"
    + '{"text": "not closed}\n'
    + json.dumps({"body": "no text field"}) + "\n"
    + json.dumps({"text": "Another document, long enough to keep."}) + "\n"
)


def write_corpus_statistics(run_dir):
    """corpus/statistics.json of CORPUS_TEXT and CORPUS_JSONL, made by the corpus stage's own functions."""
    layout = RunLayout(run_dir)
    corpus_dir = layout.corpus_dir
    os.makedirs(layout.prepared_dir, exist_ok=True)
    settings = corpus_settings({"files": ["unused"], "language": "en", "on_bad_record": "skip",
                                "max_sentence_chars": 50})
    prepared, file_statistics = [], []
    for index, (name, text) in enumerate((("a.txt", CORPUS_TEXT), ("b.jsonl", CORPUS_JSONL))):
        source = os.path.join(corpus_dir, name)
        with open(source, "w", encoding="utf-8") as handle:
            handle.write(text)
        prepared.append(layout.prepared_text(index))
        file_statistics.append(vars(prepare_file(source, settings, prepared[-1], layout.prepared_statistics(index))))
    summary = shard_corpus(prepared, corpus_dir, 2, 0.1, seed=1, deduplicate=True)
    write_json(layout.corpus_statistics, corpus_statistics(file_statistics, summary))


def write_run(run_dir, mfu=False, nsp=True, corpus=True):
    layout = RunLayout(run_dir)
    extra = {"mfu": 0.25} if mfu else {}
    lines = {
        "phase128": [metric("phase128", s, 0, 20, **extra) for s in (10, 20)]
        + [metric("phase128", s, 20, 40, **extra) for s in (30,)],
        "phase512": [metric("phase512", s, 40, 50, **extra) for s in (50,)],
    }
    # A segment killed after step 30 and resumed: step 30 logged again (the later
    # line wins), then 40; and a line cut short by the kill.
    resumed = metric("phase128", 30, 20, 40, **extra)
    resumed["loss"] = 1.5
    lines["phase128"] += [resumed, metric("phase128", 40, 20, 40, **extra)]
    for phase, records in lines.items():
        os.makedirs(layout.phase_dir(phase), exist_ok=True)
        with open(layout.metrics(phase), "w") as handle:
            for record in records:
                if not nsp:
                    record = {k: v for k, v in record.items() if not k.startswith("next_sentence")}
                handle.write(json.dumps(record) + "\n")
            if phase == "phase128":
                handle.write('{"loss": 3.0, "step"')
        evaluation = {"checkpoint": f"{phase}/model.ckpt-x", "step": 40 if phase == "phase128" else 50,
                      "instances": 54, "masked_lm_accuracy": 0.1, "masked_lm_loss": 6.0, "loss": 6.7}
        if nsp:
            evaluation.update(next_sentence_accuracy=0.6, next_sentence_loss=0.7)
        with open(layout.eval_json(phase), "w") as handle:
            json.dump(evaluation, handle)
    bench_header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for segment, seconds in zip(SEGMENTS, (40.0, 20.0, 30.0)):
        path = layout.benchmark("pretrain", phase=segment["phase"], step=segment["end"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(bench_header + f"{seconds}\t0:00:{int(seconds)}\t1200.5\t1\t1\t1\t0\t0\t90.0\t70.0\n")
    with open(layout.benchmark("shard_corpus"), "w") as handle:
        handle.write(bench_header + "0.41\t0:00:00\t7.56\t13.27\t1.58\t2.27\t0.00\t0.00\t0.00\t0.00\n")
    for seq in (128, 512):
        os.makedirs(layout.records_dir(seq), exist_ok=True)
        for part, instances in (("shard_00000", 6), ("shard_00001", 4), ("heldout", 2)):
            stats = {
                "num_instances": instances, "documents": 3, "sentences": 10, "tokens": 500,
                "unknown_tokens": 0, "instances_truncated": 1, "random_next_instances": 2,
                "sequence_length_histogram": {str(seq - 1): instances - 1, str(seq): 1},
                "masked_positions_histogram": {"5": 1, "10": instances - 1},
            }
            with open(layout.records_stats(seq, part), "w") as handle:
                json.dump(stats, handle)
        with open(layout.records_sidecar(seq), "w") as handle:
            json.dump({"format": "bert-pretraining-records/1", "num_instances": 10}, handle)
    if corpus:
        write_corpus_statistics(run_dir)
    return run_dir


# ---------------------------------------------------------------------------
# Fast: report.py functions
# ---------------------------------------------------------------------------


def test_read_metrics_keeps_the_resumed_line_and_skips_a_cut_line(tmp_path):
    run_dir = write_run(str(tmp_path))
    layout = RunLayout(run_dir)
    metrics = report.read_metrics([layout.metrics(p) for p in ("phase128", "phase512", "phase999")])
    assert [(r["phase"], r["step"]) for r in metrics] == [
        ("phase128", 10), ("phase128", 20), ("phase128", 30), ("phase128", 40), ("phase512", 50)]
    assert next(r for r in metrics if r["step"] == 30)["loss"] == 1.5


def test_read_metrics_reads_a_run_logged_under_the_old_names(tmp_path):
    """metrics.jsonl of a run in progress before the training log took Google's evaluation names."""
    layout = RunLayout(str(tmp_path))
    os.makedirs(layout.phase_dir("phase128"))
    old_names = {"masked_lm_loss": "mlm_loss", "next_sentence_loss": "nsp_loss", "masked_lm_accuracy": "mlm_accuracy",
                 "next_sentence_accuracy": "nsp_accuracy"}
    with open(layout.metrics("phase128"), "w") as handle:
        handle.write(json.dumps({old_names.get(k, k): v for k, v in metric("phase128", 10, 0, 20).items()}) + "\n")
        handle.write(json.dumps(metric("phase128", 20, 0, 20)) + "\n")
    assert report.read_metrics([layout.metrics("phase128")]) == [metric("phase128", 10, 0, 20),
                                                                  metric("phase128", 20, 0, 20)]


def test_segment_rows_join_metrics_and_benchmarks(tmp_path):
    run_dir = write_run(str(tmp_path))
    layout = RunLayout(run_dir)
    metrics = report.read_metrics([layout.metrics(p) for p in ("phase128", "phase512")])
    segments = [{**s, "benchmark": layout.benchmark("pretrain", phase=s["phase"], step=s["end"])} for s in SEGMENTS]
    rows = report.segment_rows(metrics, segments)
    assert [row["segment"] for row in rows] == ["0-20", "20-40", "40-50"]
    first = rows[0]
    assert first["wall seconds"] == 40.0 and first["wall time"] == "0:00:40"
    assert first["max RSS (MB)"] == 1200.5
    assert first["sequences/s"] == pytest.approx(25.0)  # median of 20 (step 10) and 30 (step 20)
    assert first["steps/s (wall)"] == pytest.approx(0.5)
    assert rows[1]["final loss"] == pytest.approx(9.0 - 4.0)  # step 40
    assert "MFU" not in first  # metrics without an mfu field: no MFU column

    write_run(str(tmp_path / "mfu"), mfu=True)
    metrics = report.read_metrics([RunLayout(str(tmp_path / "mfu")).metrics("phase128")])
    rows = report.segment_rows(metrics, [{"phase": "phase128", "start": 0, "end": 20}])
    assert rows[0]["MFU"] == pytest.approx(0.25)
    assert rows[0]["wall seconds"] is None  # no benchmark given


def test_evaluation_records_and_job_rows(tmp_path):
    run_dir = write_run(str(tmp_path))
    layout = RunLayout(run_dir)
    evaluations = report.evaluation_rows({p: layout.eval_json(p) for p in ("phase128", "phase512", "none")})
    assert [row["phase"] for row in evaluations] == ["phase128", "phase512"]
    assert evaluations[0]["next_sentence_accuracy"] == 0.6 and evaluations[1]["step"] == 50

    stats = report.records_stats({128: [layout.records_stats(128, p) for p in ("heldout", "shard_00000", "shard_00001")]})
    assert [s["part"] for s in stats[128]] == ["shard_00000", "shard_00001", "heldout"]
    rows = report.records_rows(stats)
    assert rows[0]["instances"] == 6
    assert rows[0]["mean length"] == pytest.approx((127 * 5 + 128) / 6)
    assert rows[0]["mean masked positions"] == pytest.approx((5 + 10 * 5) / 6)

    jobs = report.job_rows(layout.benchmarks_dir)
    assert [row["job"] for row in jobs] == [
        "phase128/segment-20", "phase128/segment-40", "phase512/segment-50", "shard_corpus"]
    assert jobs[0]["CPU seconds"] == 70.0


CORPUS_COUNTS = ("documents read", "kept", "too short", "duplicates", "bad records", "sentences", "characters",
                 "sentences cut")


def test_the_corpus_table_has_a_row_per_file_and_their_totals(tmp_path):
    run_dir = write_run(str(tmp_path))
    layout = RunLayout(run_dir)
    with open(layout.corpus_statistics) as handle:
        statistics = json.load(handle)
    *files, total = report.corpus_rows(statistics)
    assert [(row["file"], row["format"]) for row in files] == [
        (os.path.join(layout.corpus_dir, "a.txt"), "bert"), (os.path.join(layout.corpus_dir, "b.jsonl"), "jsonl")]
    assert total["file"] == "total (2 files)"
    a, b = files
    assert (a["documents read"], a["too short"], a["duplicates"], a["kept"], a["sentences cut"]) == (3, 1, 0, 2, 1)
    assert (b["documents read"], b["too short"], b["duplicates"], b["bad records"], b["kept"]) == (2, 0, 1, 2, 1)
    assert b["bad record reasons"] == "invalid_json 1, missing_field 1" and a["bad record reasons"] == ""
    for column in CORPUS_COUNTS:
        assert total[column] == a[column] + b[column], column
    assert total["documents read"] == total["kept"] + total["too short"] + total["duplicates"]
    # Sentences and characters of the kept documents: 2 + 2 pieces of the cut one + 1.
    assert total["sentences"] == 5 == sum(statistics["words_per_sentence"].values())
    sharded = "".join(open(layout.corpus_text(part)).read() for part in ("shard_00000", "shard_00001", "heldout"))
    assert total["characters"] == len(sharded.replace("\n", ""))
    assert report.corpus_documents_summary(statistics["total"]) == (
        "3 documents kept of 5 read (dropped: 1 too short, 1 duplicates, 2 bad records: invalid_json 1, missing_field 1)")
    assert report.corpus_size_summary(statistics["total"]) == (
        f"5 sentences, {total['characters']:,} characters, 2 files")


def test_counts_above_a_million_are_shortened():
    assert [report.format_count(n) for n in (999_999, 2_852_538, 1_234_000_000)] == ["999,999", "2.9 M", "1.2 G"]


def test_html_table_escapes_and_formats():
    page = report.html_table("T <1>", [{"a": 1234567, "b": 0.123456, "c": "<x>"}, {"a": None, "d": 2.0}], "note & c")
    assert "T &lt;1&gt;" in page and "&lt;x&gt;" in page and "note &amp; c" in page
    assert "<th>d</th>" in page and "1,234,567" in page and "0.1235" in page
    assert "No data." in report.html_table("empty", [])


@pytest.mark.parametrize("mfu,nsp", [(False, True), (True, False)])
def test_build_report_writes_every_output(tmp_path, mfu, nsp):
    pytest.importorskip("matplotlib")
    run_dir = write_run(str(tmp_path / "run"), mfu=mfu, nsp=nsp)
    paths = report.build_report(run_dir, SEGMENTS, [128, 512], str(tmp_path / "out"))
    assert set(paths) == set(REPORT_FILES)
    for name, path in paths.items():
        assert os.path.getsize(path) > 500, name
    curves = open(paths["training_curves"]).read()
    assert curves.startswith("<?xml") and "<svg" in curves
    assert ("next-sentence accuracy" in curves) == nsp
    assert ("MFU" in open(paths["throughput"]).read()) == mfu
    assert ("<th>MFU</th>" in open(paths["segments"]).read()) == mfu
    assert "seq 512: masked positions per instance" in open(paths["records_plot"]).read()
    assert "shard_00001" in open(paths["records"]).read()
    corpus = open(paths["corpus"]).read()
    assert corpus.count("<tr>") == 1 + 3  # the header, two files and the total
    assert "<td>total (2 files)</td>" in corpus and "<td>jsonl</td>" in corpus
    corpus_plot = open(paths["corpus_plot"]).read()
    assert "words per sentence (space-separated)" in corpus_plot and ">sentences<" in corpus_plot
    assert "3 documents kept of 5 read" in corpus_plot and "256+" in corpus_plot


def test_a_run_without_corpus_statistics_still_gets_its_report(tmp_path):
    """A run sharded before shard_corpus wrote statistics: the corpus outputs say so, the rest is as before."""
    pytest.importorskip("matplotlib")
    run_dir = write_run(str(tmp_path / "run"), corpus=False)
    paths = report.build_report(run_dir, SEGMENTS, [128, 512], str(tmp_path / "out"))
    assert set(paths) == set(REPORT_FILES)
    assert "No data." in open(paths["corpus"]).read()
    assert "No corpus statistics" in open(paths["corpus_plot"]).read()
    assert "shard_00001" in open(paths["records"]).read()


def test_rule_plot_training_declares_every_report_output():
    """rules/report.smk declares each output (with its caption); run_layout.REPORT_FILES is what build_report writes."""
    rule = open(os.path.join(REPO, "rules", "report.smk")).read()
    declared = re.findall(r'LAYOUT\.report_file\("([^"]+)"\)', rule)
    assert sorted(declared) == sorted(REPORT_FILES)


def test_the_report_module_does_not_import_matplotlib():
    code = "import sys, bert_pretraining.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------
# Slow: snakemake --report on the demo run, in headless Chromium
# ---------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=15000",
]


def chromium():
    """Debian's chromium; installed with apt-get when missing and we are root."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("headless Chromium is not installed and installing it needs root and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    installed = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                               capture_output=True, text=True, env=env, timeout=1200)
    if installed.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600)
        installed = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                                   capture_output=True, text=True, env=env, timeout=1200)
    if installed.returncode != 0 or not shutil.which("chromium"):
        pytest.skip("could not install chromium with apt-get: " + installed.stderr[-500:])
    return shutil.which("chromium")


def screenshot(browser, html_path, png_path, size="1400,1000"):
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png_path}",
             f"--window-size={size}", "file://" + os.path.abspath(html_path)],
            capture_output=True, text=True, timeout=180,
        )
    assert os.path.exists(png_path), done.stderr[-3000:]
    return png_path


def rgb_pixels(png_path):
    """The image's size and its pixels as (r, g, b) tuples, row by row."""
    from PIL import Image

    image = Image.open(png_path).convert("RGB")
    data = image.tobytes()  # RGB bytes (Pillow 12 deprecated getdata)
    return image.size, [tuple(data[i:i + 3]) for i in range(0, len(data), 3)]


def image_stats(png_path):
    size, pixels = rgb_pixels(png_path)
    non_white = sum(1 for r, g, b in pixels if r + g + b < 720)
    return size, non_white / len(pixels), len(set(pixels))


def showing(report_html, result_path, out_html):
    """The report, opened at one result as a click on it would (the report's own app.setView)."""
    script = (
        "<script>window.addEventListener('load', function () { setTimeout(function () {"
        f" var path = {json.dumps(result_path)};"
        " app.setView({content: 'img', contentPath: results[path].data_uri, resultPath: path});"
        " }, 200); });</script>"
    )
    with open(report_html, encoding="utf-8") as handle:
        page = handle.read()
    with open(out_html, "w", encoding="utf-8") as handle:
        head, tail = page.rsplit("</body>", 1)  # the page's own end tag (its scripts hold others)
        handle.write(head + script + "</body>" + tail)
    return out_html


@pytest.mark.slow
def test_report_of_the_demo_run_shows_the_plots(demo_run, tmp_path):
    browser = chromium()
    workdir, run_dir = demo_run.workdir, demo_run.run_dir
    layout = RunLayout(os.path.relpath(run_dir, workdir))
    built = snakemake(workdir, "--configfile", *DEMO_DAG_CONFIGS, "--cores", "2",
                      layout.report_file("training_curves"), timeout=900)
    assert built.returncode == 0, built.stderr[-5000:]
    layout = RunLayout(run_dir)
    with open(layout.report_file("segments")) as handle:
        segments = handle.read()
    for segment in ("0-100", "100-200", "200-300", "300-360"):
        assert f"<td>{segment}</td>" in segments
    assert segments.count("<td>0:") >= 4  # every segment has its benchmark wall time
    evaluation = open(layout.report_file("evaluation")).read()
    assert "phase128" in evaluation and "phase512" in evaluation

    # --cores: rules/pretrain.smk reads workflow.cores (threads), which is unset without it.
    made = snakemake(workdir, "--configfile", *DEMO_DAG_CONFIGS, "--cores", "2", "--report", "report.html", timeout=900)
    assert made.returncode == 0, made.stderr[-5000:]
    report_html = os.path.join(workdir, "report.html")
    page = open(report_html, encoding="utf-8").read()

    # Every plot and table is in the report's results, embedded byte for byte (a base64
    # data URI), in its category, with its caption.
    results = json.loads(re.search(r"var results = (\{.*?\});\s*</script>", page, re.S).group(1))
    for key_name, name in REPORT_FILES.items():
        key = next((key for key in results if key.endswith("/report/" + name)), None)
        assert key is not None, f"{name} is not in the report"
        embedded = base64.b64decode(results[key]["data_uri"].split("base64,", 1)[1])
        assert embedded == open(layout.report_file(key_name), "rb").read(), name
        assert results[key]["caption"].strip(), name
    categories = json.loads(re.search(r"var categories = (\{.*?\});\s*</script>", page, re.S).group(1))
    assert {"Training", "Evaluation", "Performance", "Records", "Corpus"} <= set(categories), categories
    in_training = [path for subcategory in categories["Training"].values() for path in subcategory]
    assert any(path.endswith("/report/training_curves.svg") for path in in_training), categories

    # The landing page (rule graph, description) renders; the report opened at the
    # training curves shows a plot with lines in colour.
    size, ink, colours = image_stats(screenshot(browser, report_html, str(tmp_path / "landing.png")))
    assert ink > 0.02 and colours > 50, (size, ink, colours)
    curves_key = next(key for key in results if key.endswith("/report/training_curves.svg"))
    view = showing(report_html, curves_key, str(tmp_path / "curves.html"))
    png = screenshot(browser, view, str(tmp_path / "curves.png"))
    size, ink, colours = image_stats(png)
    assert ink > 0.05 and colours > 100, (size, ink, colours)
    _, pixels = rgb_pixels(png)
    blue = sum(1 for r, g, b in pixels if b > 150 and r < 90 and g < 160)   # phase 1's line
    red = sum(1 for r, g, b in pixels if r > 180 and g < 80 and b < 80)     # phase 2's line
    assert blue > 300 and red > 100, (blue, red)
