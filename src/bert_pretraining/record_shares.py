"""Each rank's share of a phase's record files, and whether it holds a batch.

File ``i`` goes to rank ``i % ranks``, before any shuffling. No TensorFlow:
the plan (``snakemake -n``), the segment's preflight check and the input
pipeline all use these functions, so they refuse the same things.
"""

from __future__ import annotations

import os

from .errors import RecordsError


def records_per_file(sidecar: dict) -> dict[str, int]:
    """Record file name -> records, from a records.json sidecar."""
    return {entry["file"]: int(entry["num_instances"]) for entry in sidecar["files"]}


def files_for_rank(files: list[str], rank: int, num_ranks: int) -> list[str]:
    """Split files over ranks before shuffling, so each rank reads distinct data."""
    if len(files) < num_ranks:
        raise RecordsError(
            f"{len(files)} record files for {num_ranks} ranks; expected at least one file per rank "
            "(raise corpus.num_shards to a multiple of the number of GPUs)"
        )
    return files[rank::num_ranks]


def rank_records(files: list[str], records_per_file: dict[str, int], rank: int, num_ranks: int) -> int:
    """Records in a rank's share, from the sidecar's per-file counts."""
    total = 0
    for path in files_for_rank(files, rank, num_ranks):
        name = os.path.basename(path)
        if name not in records_per_file:
            raise RecordsError(f"{path} is not listed in the records sidecar; expected records made by this run")
        total += records_per_file[name]
    return total


def batches_per_epoch(num_records: int, batch_size: int, what: str) -> int:
    batches = num_records // batch_size
    if batches == 0:
        raise RecordsError(
            f"{what} holds {num_records} records, fewer than one batch of {batch_size}; "
            "expected more data or a smaller batch_size_per_gpu"
        )
    return batches


def check_rank_shares(files: list[str], records_per_file: dict[str, int], num_ranks: int, batch_size: int) -> None:
    """Every rank's share must hold at least one batch (per micro-batch under accumulation)."""
    for rank in range(num_ranks):
        share = files_for_rank(files, rank, num_ranks)
        batches_per_epoch(
            rank_records(files, records_per_file, rank, num_ranks), batch_size,
            f"rank {rank}'s share of the records ({len(share)} of {len(files)} files)",
        )
