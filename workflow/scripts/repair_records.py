"""Remake the damaged or missing record files of a run, byte-identical, and nothing else.

Reads the run's settings as Snakemake does (config.yaml, then each
--configfile), checks every record file each phase's records.json lists (size,
every frame and CRC, record count, sha256), and runs Snakemake with --force on
exactly the damaged files, so the records rule's own command makes them. Each
remade file must have the sha256 that records.json lists (records are
deterministic; another digest means that their inputs changed). The remade
files, and their stats files, then get back their modification times, so
Snakemake sees records.json and the training segments after them as up to
date: `snakemake -n` has nothing to do.

Run it from the workflow's directory, where you run snakemake, while no
snakemake runs on the same run.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bert_pretraining.cli import add_configfile_flag  # noqa: E402
from bert_pretraining.errors import RecordsError, run_main  # noqa: E402
from bert_pretraining.files import file_sha256  # noqa: E402
from bert_pretraining.records_sidecar import record_file_entries, record_file_problem  # noqa: E402
from bert_pretraining.run_layout import RECORDS_SIDECAR  # noqa: E402
from bert_pretraining.settings import load_settings  # noqa: E402

SNAKEMAKE = os.path.join(os.path.dirname(sys.executable), "snakemake")


def damaged_record_files(settings) -> list[tuple[str, dict, str]]:
    """``(path, records.json entry, problem)`` of every damaged or missing record file of the run."""
    damaged = []
    for seq in dict.fromkeys(phase.max_seq_length for phase in settings.phases):
        sidecar = settings.layout.records_sidecar(seq)
        if not os.path.exists(sidecar):
            continue  # the records stage has not finished: snakemake makes them
        for path, entry in record_file_entries(sidecar):
            problem = record_file_problem(path, entry, digest=True)
            if problem is not None:
                if not entry.get("sha256"):
                    raise RecordsError(
                        f"{problem}; {sidecar} has no sha256 of {entry['file']} (it was written by an older version), "
                        "so a remade file could not be checked: remove the records directory and rerun the records stage"
                    )
                damaged.append((path, entry, problem))
    return damaged


def remembered_times(record_path: str) -> dict[str, tuple[int, int]]:
    """``{path: (atime_ns, mtime_ns)}`` to give the remade record file and its stats file.

    Those of the stats file, which the same job wrote with the record file (a
    cut record file has the time of the cut); without it, records.json's.
    Never newer than what the jobs after them read.
    """
    stats_path = record_path[: -len(".tfrecord")] + ".json"
    source = stats_path if os.path.exists(stats_path) else os.path.join(os.path.dirname(record_path), RECORDS_SIDECAR)
    stat = os.stat(source)
    return {path: (stat.st_atime_ns, stat.st_mtime_ns) for path in (record_path, stats_path)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_configfile_flag(parser)
    parser.add_argument("--cores", default="1", help="snakemake --cores for the records jobs (default 1)")
    args = parser.parse_args(argv)
    settings = load_settings(args.configfile)
    damaged = damaged_record_files(settings)
    if not damaged:
        print(f"run {settings.run_name}: every record file is intact; nothing to remake")
        return 0
    for _, _, problem in damaged:
        print(f"damaged: {problem}")
    times = {}
    for path, _, _ in damaged:
        times.update(remembered_times(path))
    # The records rule's own command makes them (one home for its flags); --force on these targets only.
    configfiles = ["--configfile", *args.configfile] if args.configfile else []
    command = [SNAKEMAKE, *configfiles, "--cores", str(args.cores), "--force", *(path for path, _, _ in damaged)]
    print("running:", " ".join(command), flush=True)
    if subprocess.run(command).returncode != 0:
        raise RecordsError(f"snakemake could not remake {', '.join(path for path, _, _ in damaged)} (see its output above)")
    changed = [
        f"{path} was remade with sha256 {actual}, but records.json lists {entry['sha256']}"
        for path, entry, _ in damaged if (actual := file_sha256(path)) != entry["sha256"]
    ]
    if changed:
        raise RecordsError(
            f"{'; '.join(changed)}: the records' inputs (corpus shards, vocabulary, records settings) changed since "
            "records.json was written; restore them, or start a new run_name to train on the new records"
        )
    for path, (atime, mtime) in times.items():
        os.utime(path, ns=(atime, mtime))
    print(f"remade {len(damaged)} record file(s), byte-identical: {', '.join(path for path, _, _ in damaged)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
