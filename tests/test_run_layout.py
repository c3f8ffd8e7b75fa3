"""The run directory's layout (run_layout.py): the documented tree is what the methods give."""

import os
import re
import subprocess
import sys

import pytest

from bert_pretraining import run_layout
from bert_pretraining.run_layout import JOBS, REPORT_FILES, RunLayout, shard_index, shard_part

RUN_DIR = "results/<run_name>"
LAYOUT = RunLayout(RUN_DIR)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def documented_tree():
    """(path, expression) of every line of the module docstring's tree; path relative to results/<run_name>/."""
    lines = run_layout.__doc__.split("::\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert lines[0].split() == [f"{RUN_DIR}/", "run_dir"]
    entries, stack = [], []
    for line in lines[1:]:
        match = re.match(r"^    ((?:│   |    )*)[├└]── (\S+)\s+(.+)$", line)
        assert match, f"not a line of the tree: {line!r}"
        depth = len(match.group(1)) // 4
        del stack[depth:]
        stack.append(match.group(2).rstrip("/"))
        entries.append(("/".join(stack), match.group(3)))
    return entries


def test_every_line_of_the_documented_tree_is_the_path_its_member_gives():
    checked = 0
    for path, expression in documented_tree():
        if "<rule>" in expression or "<key>" in expression:
            continue  # log, benchmark and report_file: checked against their tables below
        value = eval(f"layout.{expression}", {"layout": LAYOUT})
        assert value == f"{RUN_DIR}/{path}", expression
        checked += 1
    assert checked > 30


def test_every_public_member_of_the_layout_is_in_the_documented_tree():
    documented = {re.match(r"\w+", expression).group(0) for _, expression in documented_tree()}
    members = {name for name in vars(RunLayout) if not name.startswith("_")} - {"job", "report_files"}
    assert members - documented == set()
    assert documented - members - {"run_dir"} == set()


def test_the_documented_jobs_are_the_jobs_table():
    table = run_layout.__doc__.split("``evaluate``)::\n\n", 1)[1].split("\n\n", 1)[0]
    assert dict(line.split() for line in table.splitlines() if line.strip()) == JOBS


def test_logs_benchmarks_and_report_files():
    assert LAYOUT.log("pretrain", phase="phase128", step=100) == f"{RUN_DIR}/logs/phase128/segment-100.log"
    assert LAYOUT.benchmark("create_records", seq="{seq}", part="{part}") == (
        f"{RUN_DIR}/benchmarks/records/seq{{seq}}/{{part}}.tsv"
    )
    assert LAYOUT.log("export_model") == f"{RUN_DIR}/logs/export.log"
    assert LAYOUT.report_files == [f"{RUN_DIR}/report/{name}" for name in REPORT_FILES.values()]
    with pytest.raises(KeyError):
        LAYOUT.log("pretrain", phase="phase128")  # a job's name needs every wildcard


@pytest.mark.parametrize("run_dir", ["results/demo", "/scratch/project/results/my run"])
def test_every_path_is_under_the_run_directory(run_dir):
    layout = RunLayout(run_dir)
    paths = [eval(f"layout.{expression}", {"layout": layout}) for _, expression in documented_tree()
             if "<rule>" not in expression and "<key>" not in expression]
    paths += [layout.log(rule, index=0, seq=128, part="heldout", phase="phase128", step=10) for rule in JOBS]
    paths += [layout.benchmark(rule, index=0, seq=128, part="heldout", phase="phase128", step=10) for rule in JOBS]
    paths += layout.report_files + [layout.shard(3), layout.heldout, layout.checkpoint("phase128", 10)]
    for path in paths:
        assert path == run_dir or path.startswith(run_dir + "/"), path


def test_numbers_and_wildcards():
    """Numbers get the five digits of the file names; a wildcard's text goes in as it is."""
    assert LAYOUT.shard(3) == f"{RUN_DIR}/corpus/shard_00003.txt" == LAYOUT.corpus_text(shard_part(3))
    assert LAYOUT.prepared_text(12) == f"{RUN_DIR}/corpus/prepared/file_00012.txt"
    assert LAYOUT.prepared_text("{index}") == f"{RUN_DIR}/corpus/prepared/file_{{index}}.txt"
    assert shard_index(shard_part(42)) == 42
    assert re.fullmatch(run_layout.PART_PATTERN, shard_part(7)) and re.fullmatch(run_layout.PART_PATTERN, "heldout")
    assert LAYOUT.checkpoint_files("phase512", 1000) == {
        "index": f"{RUN_DIR}/phase512/model.ckpt-1000.index",
        "data": f"{RUN_DIR}/phase512/model.ckpt-1000.data-00000-of-00001",
    }
    assert LAYOUT.training_records(128) == f"{RUN_DIR}/records/seq128/shard_*.tfrecord"


def test_the_layout_imports_nothing_of_the_package():
    code = ("import sys, bert_pretraining.run_layout; "
            "assert [m for m in sys.modules if m.startswith('bert_pretraining.')] == ['bert_pretraining.run_layout']")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_no_rule_spells_a_path_of_the_run_directory():
    """The rules ask LAYOUT (rules/common.smk) for every path under results/<run_name>/."""
    for name in sorted(os.listdir(os.path.join(REPO, "rules"))):
        text = open(os.path.join(REPO, "rules", name)).read()
        assert not re.search(r"RESULTS|\{LOGS\}|\{BENCHMARKS\}|model\.ckpt|records/seq|\.tfrecord|/eval\.json", text), name
