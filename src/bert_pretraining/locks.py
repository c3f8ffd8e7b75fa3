"""Snakemake's directory lock, and what to do about one left by a killed run.

Two workflow runs on one directory must not interleave: Snakemake's lock makes
the second refuse. But a run killed with SIGKILL (or a lost login session)
leaves its lock behind, and the next run then refuses too. `clear_stale_lock`
removes the lock only when no process of the workflow on this machine works in
the directory (Snakemake, or a job it started: a job outlives a Snakemake
killed alone, and a rerun must not train the same segment beside it), so
`make demo` can simply be run again after a kill, while a second concurrent
run is still refused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time


# Every job of the workflow runs one of its scripts (one per rule), started
# by Snakemake in the working directory.
WORKFLOW_COMMAND_MARKS = ("snakemake", "workflow/scripts/")


def _ancestors() -> set[int]:
    """This process and its parents (make, the user's shell): never a competing run."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def workflow_processes_in(workdir: str) -> list[int]:
    """PIDs of live Snakemake processes and workflow jobs working in ``workdir`` (Linux /proc)."""
    target = os.path.realpath(workdir)
    ours = _ancestors()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
            cwd = os.path.realpath(os.readlink(f"/proc/{entry}/cwd"))
        except (OSError, IndexError):
            continue
        if state == "Z" or "bert_pretraining.locks" in command:
            continue
        if cwd == target and any(mark in command for mark in WORKFLOW_COMMAND_MARKS):
            pids.append(int(entry))
    return pids


def clear_stale_lock(workdir: str = ".", settle_seconds: float = 3.0) -> str:
    """Remove .snakemake/locks if no Snakemake or job of the workflow runs here; return what was done."""
    locks = os.path.join(workdir, ".snakemake", "locks")
    if not os.path.isdir(locks) or not os.listdir(locks):
        return "no lock"
    running = workflow_processes_in(workdir)
    deadline = time.monotonic() + settle_seconds
    while running and time.monotonic() < deadline:
        # Processes of a group killed a moment ago may not have exited yet.
        time.sleep(0.1)
        running = workflow_processes_in(workdir)
    if running:
        return (
            f"locked by a running Snakemake or one of its jobs (pid {', '.join(map(str, running))}); left in place"
        )
    shutil.rmtree(locks)
    return "removed a stale lock left by a killed run"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default=".")
    args = parser.parse_args(argv)
    outcome = clear_stale_lock(args.workdir)
    if outcome != "no lock":
        print(outcome, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
