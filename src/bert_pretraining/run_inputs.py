"""What a run's checkpoints were trained on, and whether the run still has it.

Every checkpoint's manifest records the digests of its inputs: the
vocabulary, the model config and the records of its phase
(``training_inputs``). A segment refuses to start from a checkpoint trained
on other inputs (``check_checkpoint_inputs``), and the export refuses to ship
a vocabulary the weights were not trained with. Digests, not file
permissions or modification times: the guard holds for root, and a file
restored with a new mtime raises no alarm.

Before anything runs, ``input_changes`` compares the run's current files,
and the corpus files against what the preparation read, with every
checkpoint's record; the plan, ``snakemake -n`` and the status all print
``describe_input_changes``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from .checkpoints import list_checkpoints, read_manifest
from .errors import CheckpointError
from .files import file_sha256, read_json
from .records_sidecar import SHARED_FLAGS

# What the digests stand for, in the order they are reported.
INPUT_LABELS = {
    "vocab_sha256": "the vocabulary (vocab.txt)",
    "bert_config_sha256": "the model config (bert_config.json)",
    "records_sha256": "the records",
}
# Inputs that a phase's first segment shares with the previous phase's checkpoint (records are per phase).
SHARED_ACROSS_PHASES = ("vocab_sha256", "bert_config_sha256")
# What identifies a record file's content in records.json (counts and statistics may gain fields).
RECORD_FILE_IDENTITY = ("file", "num_instances", "random_seed", "sha256")


def bert_config_digest(path: str) -> str:
    """The digest of a bert_config.json's content (key order and layout do not count)."""
    return _json_digest(read_json(path))


def records_digest(sidecar: dict) -> str:
    """The digest of a records directory's training files, as its records.json describes them."""
    files = [{key: entry.get(key) for key in RECORD_FILE_IDENTITY} for entry in sidecar["files"]]
    return _json_digest({"flags": {name: sidecar[name] for name in SHARED_FLAGS}, "files": files})


def _json_digest(content) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()


def training_inputs(bert_config_path: str, sidecar: dict) -> dict[str, str]:
    """The digests a segment's checkpoints record; the records' vocabulary is the one they were made with."""
    return {
        "vocab_sha256": sidecar["vocab_sha256"],
        "bert_config_sha256": bert_config_digest(bert_config_path),
        "records_sha256": records_digest(sidecar),
    }


def checkpoint_inputs(prefix: str) -> dict[str, str] | None:
    """The inputs a checkpoint's manifest records (None: a checkpoint of another tool or an older version)."""
    return (read_manifest(prefix) or {}).get("inputs")


def differing_inputs(recorded: dict | None, current: dict, *, same_phase: bool = True) -> list[str]:
    """The names of the inputs that differ; what a checkpoint does not record is not compared."""
    names = INPUT_LABELS if same_phase else SHARED_ACROSS_PHASES
    return [name for name in names if recorded and name in recorded and name in current and recorded[name] != current[name]]


def check_checkpoint_inputs(prefix: str, current: dict, *, same_phase: bool = True) -> None:
    """Refuse to start from a checkpoint trained on other inputs than ``current``."""
    changed = differing_inputs(checkpoint_inputs(prefix), current, same_phase=same_phase)
    if changed:
        directory = os.path.dirname(os.path.dirname(os.path.abspath(prefix)))
        raise CheckpointError(
            f"{prefix} was trained on other inputs than this run has now: {_labels(changed)} changed. Its weights "
            "belong to the old ones. To keep training it, restore the inputs as they were; to train on the new "
            "ones, use a new run_name, or remove this run's checkpoints trained on the old inputs "
            f"(`python workflow/scripts/status.py` names the first step; the checkpoints are under {directory})"
        )


def _labels(names: list[str]) -> str:
    return ", ".join(INPUT_LABELS[name] for name in names)


@dataclass(frozen=True)
class InputChanges:
    """What changed since the run's checkpoints were trained, and the first step trained on the old inputs."""

    changed: list[str]
    since_step: int
    checkpoints: list[str]

    def describe(self) -> str:
        return (
            f"inputs changed since step {self.since_step}: {'; '.join(self.changed)}. The checkpoints from step "
            f"{self.since_step} on were trained on the old inputs ({', '.join(self.checkpoints[:4])}"
            f"{' ...' if len(self.checkpoints) > 4 else ''}); continuing them would pair their weights with other "
            "data or another vocabulary, so no segment starts from them. To keep the run, restore the inputs as they "
            "were; to train on the new ones, use a new run_name, or remove the checkpoints from step "
            f"{self.since_step} on (the files model.ckpt-<step>.* of those steps, also in .segment-ends/)"
        )


def current_inputs(settings, phase) -> dict[str, str]:
    """The digests of the run's files as they are now (what exists of them)."""
    layout = settings.layout
    current = {}
    vocab = layout.vocab
    if os.path.isfile(vocab):
        current["vocab_sha256"] = file_sha256(vocab)
    bert_config = layout.bert_config
    if os.path.isfile(bert_config):
        current["bert_config_sha256"] = bert_config_digest(bert_config)
    sidecar = read_json(layout.records_sidecar(phase.max_seq_length))
    if sidecar is not None and all(name in sidecar for name in ("files", *SHARED_FLAGS)):
        current["records_sha256"] = records_digest(sidecar)
    return current


def input_changes(settings, corpus: list[tuple[str, str]]) -> InputChanges | None:
    """What changed in the run's inputs since its checkpoints were trained (None: nothing, or no checkpoints).

    ``corpus``: the corpus files that differ from what the preparation read
    (prepare.changed_corpus_files); every checkpoint was trained on records
    made from it. The vocabulary, the model config and each phase's records
    are compared with what each checkpoint's manifest records.
    """
    trained = []  # (step, prefix, names of the inputs that differ)
    for phase in settings.phases:
        directory = settings.layout.phase_dir(phase.name)
        current = current_inputs(settings, phase)
        for ref in list_checkpoints(directory, include_segment_ends=False):
            trained.append((ref.step, ref.prefix, differing_inputs(checkpoint_inputs(ref.prefix), current)))
    if not trained:
        return None
    changed = [f"corpus file {path} {how}" for path, how in corpus]
    stale = [(step, prefix, names) for step, prefix, names in trained if names or corpus]
    if not stale:
        return None
    for names in (names for _, _, names in stale):
        changed += [INPUT_LABELS[name] for name in names if INPUT_LABELS[name] not in changed]
    since = min(step for step, _, _ in stale)
    return InputChanges(changed, since, [os.path.relpath(prefix) for _, prefix, _ in sorted(stale)])
