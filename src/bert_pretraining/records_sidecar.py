"""The records sidecar (records.json): what a records directory was made with.

Each records job writes a stats file (create_pretraining_data --stats_file);
:func:`summarize_records_stats` checks that the shards agree and sums them
into the sidecar; training checks its flags against the sidecar
(:func:`check_records_sidecar`) before it reads a record. The sidecar lists
each record file's count, size and sha256: the dry run compares the sizes
(:func:`record_file_problems`), check_<phase> scans every frame
(:func:`verify_record_files`), and workflow/scripts/repair_records.py remakes
the damaged files byte-identical.
"""

from __future__ import annotations

import os
from typing import Iterable

from .errors import RecordsError
from .files import file_sha256, read_json_object, write_json
from .tfrecords import scan_records

SIDECAR_FORMAT = "bert-pretraining-records/1"

# Flags every shard of a records directory must share; training reads the
# shards as one data set.
SHARED_FLAGS = (
    "max_seq_length",
    "max_predictions_per_seq",
    "vocab_sha256",
    "masked_lm_prob",
    "dupe_factor",
    "short_seq_prob",
    "do_whole_word_mask",
    "do_lower_case",
)
# What the held-out records must share with the training records to measure
# the same task (they may use another dupe_factor, short_seq_prob and seed).
HELDOUT_SHARED_FLAGS = tuple(flag for flag in SHARED_FLAGS if flag not in ("dupe_factor", "short_seq_prob"))
# The fields a sidecar, and each shard's stats file it is summed from, must have.
SIDECAR_FIELDS = ("num_instances", *SHARED_FLAGS, "random_seed", "files")


def write_records_sidecar(
    path: str,
    *,
    files: list[dict],
    max_seq_length: int,
    max_predictions_per_seq: int,
    vocab_sha256: str,
    masked_lm_prob: float,
    dupe_factor: int,
    short_seq_prob: float,
    do_whole_word_mask: bool,
    do_lower_case: bool,
    random_seed: int,
    heldout: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """Write records.json atomically and return its content.

    ``files`` is ``[{"file": basename, "num_instances": n, ...}]`` (training
    computes epoch sizes from the counts); ``heldout`` is one such entry or
    None. ``num_instances`` is the sum over ``files``. ``extra`` adds
    informational fields (totals of documents, tokens...).
    """
    for entry in files + ([heldout] if heldout else []):
        if not isinstance(entry.get("file"), str) or not isinstance(entry.get("num_instances"), int):
            raise RecordsError(f"{path}: file entry {entry!r} needs 'file' (a name) and 'num_instances' (an int)")
    content = {
        "format": SIDECAR_FORMAT,
        "num_instances": sum(entry["num_instances"] for entry in files),
        "max_seq_length": max_seq_length,
        "max_predictions_per_seq": max_predictions_per_seq,
        "vocab_sha256": vocab_sha256,
        "masked_lm_prob": masked_lm_prob,
        "dupe_factor": dupe_factor,
        "short_seq_prob": short_seq_prob,
        "do_whole_word_mask": do_whole_word_mask,
        "do_lower_case": do_lower_case,
        "random_seed": random_seed,
        "files": files,
    }
    if heldout is not None:
        content["heldout"] = heldout
    if extra:
        content.update({key: value for key, value in extra.items() if key not in content})
    write_json(path, content)
    return content


def read_records_sidecar(path: str) -> dict:
    """The content of a records.json, with its required fields checked."""
    content = read_json_object(
        path, "records sidecar", RecordsError,
        if_missing="the records.json written with the records (run the records stage first)",
    )
    missing = [name for name in SIDECAR_FIELDS if name not in content]
    if missing:
        raise RecordsError(f"{path}: records sidecar lacks the field(s) {', '.join(missing)}")
    return content


def check_records_sidecar(
    sidecar_path: str,
    *,
    max_seq_length: int,
    max_predictions_per_seq: int,
    vocab_path: str | None = None,
    check_files: bool = True,
) -> dict:
    """Check that records fit the training flags; returns the sidecar content.

    Raises RecordsError naming the sidecar, the field, the value found and the
    value expected. With ``vocab_path`` the records' vocabulary hash must
    match that file; with ``check_files`` every listed record file must exist
    next to the sidecar with the size the sidecar lists (no scan: cheap).
    """
    content = read_records_sidecar(sidecar_path)
    expected = {"max_seq_length": max_seq_length, "max_predictions_per_seq": max_predictions_per_seq}
    for name, value in expected.items():
        if content[name] != value:
            raise RecordsError(
                f"{sidecar_path}: {name} is {content[name]} but training is configured with "
                f"{name} {value}; records must be generated with the same value (set in create_pretraining_data)"
            )
    if vocab_path is not None:
        if not os.path.isfile(vocab_path):
            raise RecordsError(f"{vocab_path}: vocabulary file does not exist; expected the vocabulary of the records")
        actual = file_sha256(vocab_path)
        if content["vocab_sha256"] != actual:
            raise RecordsError(
                f"{sidecar_path}: vocab_sha256 is {content['vocab_sha256']} but the vocabulary "
                f"{vocab_path} has sha256 {actual}; records must be generated with the vocabulary "
                "used for training (set --vocab_file in create_pretraining_data)"
            )
    if check_files:
        check_record_files(sidecar_path, scan=False)
    return content


# --------------------------------------------------------------------------
# The record files against records.json
# --------------------------------------------------------------------------

# The one command that remakes damaged or missing record files (workflow/scripts/repair_records.py).
REPAIR_COMMAND = "make repair-records CONFIG=\"<the run's --configfile files>\""


def record_file_entries(sidecar_path: str) -> list[tuple[str, dict]]:
    """``(path, entry)`` of every record file records.json lists: the training files, then the held-out file."""
    content = read_records_sidecar(sidecar_path)
    directory = os.path.dirname(sidecar_path)
    entries = list(content["files"]) + ([content["heldout"]] if content.get("heldout") else [])
    return [(os.path.join(directory, entry["file"]), entry) for entry in entries]


def record_file_problems(sidecar_path: str) -> list[str]:
    """The record files that are missing or whose size is not records.json's ``bytes``; os.stat only.

    Cheap enough for every dry run. A sidecar without sizes (written before
    they were recorded) is checked for missing files only.
    """
    return [problem for path, entry in record_file_entries(sidecar_path) if (problem := _size_problem(path, entry))]


def damaged_records_in(sidecars: Iterable[str]) -> list[str]:
    """:func:`record_file_problems` of each records.json that exists (RunLayout.records_sidecar), each with the repair command.

    For the dry run and the status: a records.json that cannot be read is
    left to the jobs that read it, which say why.
    """
    problems = []
    for sidecar in dict.fromkeys(sidecars):
        if os.path.exists(sidecar):
            try:
                problems += record_file_problems(sidecar)
            except RecordsError:
                continue
    return [f"{problem}; remake it with {REPAIR_COMMAND}" for problem in problems]


def verify_record_files(sidecar_path: str, *, scan: bool = True) -> list[str]:
    """Every problem of the record files records.json lists, one string each, naming the file.

    Missing files and wrong sizes; with ``scan``, every frame and CRC and the
    record count (``num_instances``).
    """
    return [
        problem for path, entry in record_file_entries(sidecar_path)
        if (problem := record_file_problem(path, entry, scan=scan))
    ]


def record_file_problem(path: str, entry: dict, *, scan: bool = True, digest: bool = False) -> str | None:
    """What is wrong with one record file against its records.json ``entry``; None if nothing (cheapest first)."""
    problem = _size_problem(path, entry)
    if problem is None and scan:
        problem = _scan_problem(path, entry)
    if problem is None and digest and entry.get("sha256") and (actual := file_sha256(path)) != entry["sha256"]:
        problem = f"{path}: sha256 is {actual}, but records.json lists {entry['sha256']}; the file was changed"
    return problem


def check_record_files(sidecar_path: str, *, scan: bool = True) -> None:
    """RecordsError naming every damaged or missing record file and the command that remakes them."""
    problems = verify_record_files(sidecar_path, scan=scan)
    if problems:
        raise RecordsError(damaged_records_message(problems))


def damaged_records_message(problems: list[str]) -> str:
    return f"{'; '.join(problems)}; remake the damaged record files with {REPAIR_COMMAND}"


def _size_problem(path: str, entry: dict) -> str | None:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return f"{path} does not exist, but records.json beside it lists it"
    if "bytes" in entry and size != entry["bytes"]:
        return f"{path} has {size:,} bytes, but records.json lists {entry['bytes']:,}; the file is cut or was changed"
    return None


def _scan_problem(path: str, entry: dict) -> str | None:
    try:
        count = scan_records(path)
    except RecordsError as error:
        return str(error)
    if count != entry["num_instances"]:
        return f"{path} holds {count:,} records, but records.json lists {entry['num_instances']:,}"
    return None


def summarize_records_stats(stats_paths: list[str], heldout_stats_path: str | None = None) -> dict:
    """The sidecar fields from per-shard stats files (create_pretraining_data --stats_file).

    Checks that every shard used the same flags and vocabulary; returns the
    keyword arguments of :func:`write_records_sidecar` (without ``path``).
    """
    if not stats_paths:
        raise RecordsError("--stats: no stats files given; expected one per records shard")
    stats = [_read_stats(path) for path in stats_paths]
    first_path, first = stats_paths[0], stats[0]
    for path, shard in zip(stats_paths[1:], stats[1:]):
        _check_same(path, shard, first_path, first, SHARED_FLAGS)
    heldout = None
    heldout_stats = None
    if heldout_stats_path is not None:
        heldout_stats = _read_stats(heldout_stats_path)
        _check_same(heldout_stats_path, heldout_stats, first_path, first, HELDOUT_SHARED_FLAGS)
        if len(heldout_stats["files"]) != 1:
            raise RecordsError(
                f"{heldout_stats_path}: held-out records are in {len(heldout_stats['files'])} files; expected one"
            )
        heldout = {**heldout_stats["files"][0], "dupe_factor": heldout_stats["dupe_factor"],
                   "random_seed": heldout_stats["random_seed"]}

    files = []
    for path, shard in zip(stats_paths, stats):
        for entry in shard["files"]:
            files.append({**entry, "random_seed": shard["random_seed"]})
    names = [entry["file"] for entry in files] + ([heldout["file"]] if heldout else [])
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RecordsError(f"the stats files list the record file(s) {', '.join(duplicates)} more than once")

    def total(key: str) -> int:
        return sum(shard.get(key, 0) for shard in stats)

    return {
        "files": files,
        "heldout": heldout,
        **{name: first[name] for name in SHARED_FLAGS},
        # The seed of the first shard; each file's own seed is in its entry.
        "random_seed": first["random_seed"],
        "extra": {
            "vocab_size": first.get("vocab_size"),
            "num_documents": total("documents"),
            "num_tokens": total("tokens"),
            "num_unknown_tokens": total("unknown_tokens"),
            "single_sentence_documents": sum(
                shard.get("single_sentence_documents", {}).get("kept", 0) for shard in stats
            ),
            "instances_truncated": total("instances_truncated"),
            "random_next_instances": total("random_next_instances"),
        },
    }


def _read_stats(path: str) -> dict:
    stats = read_json_object(path, "stats file", RecordsError, if_missing="create_pretraining_data's --stats_file")
    missing = [name for name in SIDECAR_FIELDS if name not in stats]
    if missing:
        raise RecordsError(f"{path}: stats file lacks the field(s) {', '.join(missing)}")
    return stats


def _check_same(path: str, stats: dict, reference_path: str, reference: dict, names: Iterable[str]) -> None:
    for name in names:
        if stats[name] != reference[name]:
            raise RecordsError(
                f"{path}: {name} is {stats[name]} but {reference_path} has {reference[name]}; "
                "all records of one sequence length must be made with the same flags and vocabulary"
            )
