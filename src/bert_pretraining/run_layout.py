"""The run directory's layout: every path under ``results/<run_name>/`` is named here, and only here.

The rules (through ``LAYOUT`` in rules/common.smk), the status, the report,
the checkpoints and the tests ask a :class:`RunLayout` for a path instead of
spelling it. Where a rule needs a Snakemake wildcard, it passes the wildcard's
text (``"{seq}"``, ``"{part}"``, ``"{index}"``, ``"{step}"``) for the value.
The tree (the right column is the :class:`RunLayout` member that gives the
path; tests/test_run_layout.py checks the two against each other)::

    results/<run_name>/                         run_dir
    ├── corpus/                                 corpus_dir
    │   ├── prepared/                           prepared_dir
    │   │   ├── file_<index>.txt                prepared_text("<index>")
    │   │   └── file_<index>.json               prepared_statistics("<index>")
    │   ├── shard_<index>.txt                   shard("<index>")
    │   ├── heldout.txt                         heldout
    │   ├── <part>.txt                          corpus_text("<part>")
    │   └── statistics.json                     corpus_statistics
    ├── vocab.txt                               vocab
    ├── bert_config.json                        bert_config
    ├── records/                                records_root
    │   └── seq<seq>/                           records_dir("<seq>")
    │       ├── <part>.tfrecord                 records_file("<seq>", "<part>")
    │       ├── <part>.json                     records_stats("<seq>", "<part>")
    │       ├── shard_*.tfrecord                training_records("<seq>")
    │       └── records.json                    records_sidecar("<seq>")
    ├── <phase>/                                phase_dir("<phase>")
    │   ├── model.ckpt-<step>                   checkpoint("<phase>", "<step>")
    │   ├── model.ckpt-<step>.index             checkpoint_files("<phase>", "<step>")["index"]
    │   ├── model.ckpt-<step>.data-00000-of-00001  checkpoint_files("<phase>", "<step>")["data"]
    │   ├── .checked-<step>                     check_marker("<phase>", "<step>")
    │   ├── .segment-ends/                      segment_ends("<phase>")
    │   ├── .damaged/                           damaged("<phase>")
    │   ├── metrics.jsonl                       metrics("<phase>")
    │   ├── training.log                        training_log("<phase>")
    │   ├── tensorboard/                        tensorboard("<phase>")
    │   └── eval.json                           eval_json("<phase>")
    ├── export/                                 export_dir
    ├── report/                                 report_dir
    │   └── <file>                              report_file(<key>)
    ├── compile-cache/                          compile_cache_root
    │   └── tf<version>-<machine>/              compile_cache("<version>", "<machine>")
    ├── logs/                                   logs_dir
    │   └── <job>.log                           log(<rule>, **wildcards)
    └── benchmarks/                             benchmarks_dir
        └── <job>.tsv                           benchmark(<rule>, **wildcards)

``<part>`` is ``shard_<index>`` (:func:`shard_part`) or ``heldout``; ``<index>``
and shard numbers have five digits. A checkpoint is its prefix plus the
suffixes ``.index``, ``.data-00000-of-00001`` and ``.manifest.json``; a phase
directory also holds the ``checkpoint`` state file that TensorFlow's tools
read, and a segment's final checkpoint has a copy in ``.segment-ends/`` (the
checkpoints module writes, lists and repairs them; damaged files go into
``.damaged/``). ``<file>`` is a value of :data:`REPORT_FILES`. ``<job>`` of
each rule (:data:`JOBS`; the phase rules are ``check``, ``pretrain`` and
``evaluate``)::

    prepare_corpus      prepare_corpus/file_{index}
    shard_corpus        shard_corpus
    train_vocab         train_vocab
    write_bert_config   write_bert_config
    create_records      records/seq{seq}/{part}
    summarize_records   records/seq{seq}/summarize
    check               {phase}/check-{step}
    pretrain            {phase}/segment-{step}
    evaluate            {phase}/evaluate
    export_model        export
    plot_training       report/plot_training

This module imports nothing from the package, so that the lowest modules
(checkpoints, corpus, compile_cache) can use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# --- names inside a phase directory (the checkpoints module reads them) ---
INDEX_SUFFIX = ".index"
DATA_SUFFIX = ".data-00000-of-00001"
MANIFEST_SUFFIX = ".manifest.json"
CHECKPOINT_STATE = "checkpoint"  # the file tf.train.latest_checkpoint and Google's tools read
SEGMENT_ENDS_DIR = ".segment-ends"
DAMAGED_DIR = ".damaged"
METRICS_FILE = "metrics.jsonl"
TRAINING_LOG_FILE = "training.log"
TENSORBOARD_DIR = "tensorboard"
EVAL_FILE = "eval.json"

# --- names inside the corpus and records directories ---
HELDOUT_PART = "heldout"
PART_PATTERN = "shard_[0-9]+|heldout"  # the {part} wildcard
RECORDS_SIDECAR = "records.json"
CORPUS_STATISTICS = "statistics.json"
COMPILE_CACHE_DIR = "compile-cache"

# The report's files (report.build_report writes them; rules/report.smk declares them with their captions).
REPORT_FILES = {
    "training_curves": "training_curves.svg",
    "learning_rate": "learning_rate.svg",
    "throughput": "throughput.svg",
    "records_plot": "records.svg",
    "segments": "segments.html",
    "evaluation": "evaluation.html",
    "records": "records.html",
    "jobs": "jobs.html",
    "corpus_plot": "corpus.svg",
    "corpus": "corpus.html",
}

# Each rule's log (logs/<job>.log) and benchmark (benchmarks/<job>.tsv); the phase rules by family.
JOBS = {
    "prepare_corpus": "prepare_corpus/file_{index}",
    "shard_corpus": "shard_corpus",
    "train_vocab": "train_vocab",
    "write_bert_config": "write_bert_config",
    "create_records": "records/seq{seq}/{part}",
    "summarize_records": "records/seq{seq}/summarize",
    "check": "{phase}/check-{step}",
    "pretrain": "{phase}/segment-{step}",
    "evaluate": "{phase}/evaluate",
    "export_model": "export",
    "plot_training": "report/plot_training",
}


def _numbered(index: int | str) -> str:
    """Five digits for a number; a wildcard's text (``"{index}"``) as it is."""
    return f"{index:05d}" if isinstance(index, int) else str(index)


def shard_part(index: int | str) -> str:
    """The part name of training shard ``index``: shard_00000, shard_00001, ..."""
    return f"shard_{_numbered(index)}"


def shard_index(part: str) -> int:
    """The number of a training shard's part name (``shard_00003`` -> 3)."""
    return int(part.split("_")[1])


def shard_file_name(index: int | str) -> str:
    """File name of training shard ``index`` in the corpus directory: shard_00000.txt, ..."""
    return f"{shard_part(index)}.txt"


HELDOUT_FILE_NAME = f"{HELDOUT_PART}.txt"


def prepared_text_name(index: int | str) -> str:
    """The prepared text of input file ``index`` (in sorted order): file_00000.txt, ..."""
    return f"file_{_numbered(index)}.txt"


def prepared_statistics_name(index: int | str) -> str:
    return f"file_{_numbered(index)}.json"


def checkpoint_name(step: int | str) -> str:
    """A checkpoint's prefix in its directory: model.ckpt-<step>."""
    return f"model.ckpt-{step}"


def checkpoint_file_names(prefix: str) -> dict[str, str]:
    """The two files of the checkpoint ``prefix`` (a TensorFlow bundle)."""
    return {"index": prefix + INDEX_SUFFIX, "data": prefix + DATA_SUFFIX}


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory, ``results/<run_name>`` (``Settings.layout``)."""

    run_dir: str

    def _path(self, *parts) -> str:
        return os.path.join(self.run_dir, *(str(part) for part in parts))

    # --- corpus ---
    @property
    def corpus_dir(self) -> str:
        return self._path("corpus")

    @property
    def prepared_dir(self) -> str:
        return self._path("corpus", "prepared")

    def prepared_text(self, index: int | str) -> str:
        return os.path.join(self.prepared_dir, prepared_text_name(index))

    def prepared_statistics(self, index: int | str) -> str:
        return os.path.join(self.prepared_dir, prepared_statistics_name(index))

    def corpus_text(self, part: str) -> str:
        """A shard (``shard_part(i)``) or the held-out split (``heldout``) of the corpus."""
        return os.path.join(self.corpus_dir, f"{part}.txt")

    def shard(self, index: int | str) -> str:
        return os.path.join(self.corpus_dir, shard_file_name(index))

    @property
    def heldout(self) -> str:
        return os.path.join(self.corpus_dir, HELDOUT_FILE_NAME)

    @property
    def corpus_statistics(self) -> str:
        """The corpus statistics sidecar that shard_corpus writes."""
        return os.path.join(self.corpus_dir, CORPUS_STATISTICS)

    # --- vocabulary and model config ---
    @property
    def vocab(self) -> str:
        return self._path("vocab.txt")

    @property
    def bert_config(self) -> str:
        return self._path("bert_config.json")

    # --- records ---
    @property
    def records_root(self) -> str:
        return self._path("records")

    def records_dir(self, seq: int | str) -> str:
        """The records of one sequence length: shard_*.tfrecord, heldout.tfrecord, records.json."""
        return os.path.join(self.records_root, f"seq{seq}")

    def records_file(self, seq: int | str, part: str) -> str:
        return os.path.join(self.records_dir(seq), f"{part}.tfrecord")

    def records_stats(self, seq: int | str, part: str) -> str:
        """The stats file create_pretraining_data.py writes beside a records file."""
        return os.path.join(self.records_dir(seq), f"{part}.json")

    def training_records(self, seq: int | str) -> str:
        """The glob of the training record files of one sequence length."""
        return self.records_file(seq, shard_part("*"))

    def records_sidecar(self, seq: int | str) -> str:
        return os.path.join(self.records_dir(seq), RECORDS_SIDECAR)

    # --- training phases ---
    def phase_dir(self, phase: str) -> str:
        return self._path(phase)

    def checkpoint(self, phase: str, step: int | str) -> str:
        """The prefix of checkpoint model.ckpt-<step> in a phase directory."""
        return os.path.join(self.phase_dir(phase), checkpoint_name(step))

    def checkpoint_files(self, phase: str, step: int | str) -> dict[str, str]:
        """``{"index": ..., "data": ...}``: the two files of checkpoint model.ckpt-<step>."""
        return checkpoint_file_names(self.checkpoint(phase, step))

    def check_marker(self, phase: str, step: int | str) -> str:
        """The (temporary) output of the check before the segment that ends at ``step``."""
        return os.path.join(self.phase_dir(phase), f".checked-{step}")

    def segment_ends(self, phase: str) -> str:
        return os.path.join(self.phase_dir(phase), SEGMENT_ENDS_DIR)

    def damaged(self, phase: str) -> str:
        return os.path.join(self.phase_dir(phase), DAMAGED_DIR)

    def metrics(self, phase: str) -> str:
        return os.path.join(self.phase_dir(phase), METRICS_FILE)

    def training_log(self, phase: str) -> str:
        return os.path.join(self.phase_dir(phase), TRAINING_LOG_FILE)

    def tensorboard(self, phase: str) -> str:
        return os.path.join(self.phase_dir(phase), TENSORBOARD_DIR)

    def eval_json(self, phase: str) -> str:
        return os.path.join(self.phase_dir(phase), EVAL_FILE)

    # --- export, report, compile caches ---
    @property
    def export_dir(self) -> str:
        return self._path("export")

    @property
    def report_dir(self) -> str:
        return self._path("report")

    def report_file(self, key: str) -> str:
        """One of the report's files, by its key in :data:`REPORT_FILES`."""
        return os.path.join(self.report_dir, REPORT_FILES[key])

    @property
    def report_files(self) -> list[str]:
        return [self.report_file(key) for key in REPORT_FILES]

    @property
    def compile_cache_root(self) -> str:
        return self._path(COMPILE_CACHE_DIR)

    def compile_cache(self, version: str, machine: str) -> str:
        """The compile caches of one TensorFlow version and machine architecture (compile_cache.py)."""
        return os.path.join(self.compile_cache_root, f"tf{version}-{machine}")

    # --- logs and benchmarks ---
    @property
    def logs_dir(self) -> str:
        return self._path("logs")

    @property
    def benchmarks_dir(self) -> str:
        return self._path("benchmarks")

    @staticmethod
    def job(rule: str, **wildcards) -> str:
        """A job's name under logs/ and benchmarks/ (:data:`JOBS`); a wildcard may be given as ``"{step}"``."""
        return JOBS[rule].format(**wildcards)

    def log(self, rule: str, **wildcards) -> str:
        return os.path.join(self.logs_dir, f"{self.job(rule, **wildcards)}.log")

    def benchmark(self, rule: str, **wildcards) -> str:
        return os.path.join(self.benchmarks_dir, f"{self.job(rule, **wildcards)}.tsv")
