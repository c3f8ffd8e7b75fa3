"""Snakemake's directory lock, and what to do about one left by a killed run.

Two workflow runs on one directory must not interleave: Snakemake's lock makes
the second refuse. But a run killed with SIGKILL (or a lost login session)
leaves its lock behind, and the next run then refuses too. `clear_stale_lock`
removes the lock only when no Snakemake process on this machine works in the
directory, so `make demo` can simply be run again after a kill, while a
second concurrent run is still refused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys


def snakemake_processes_in(workdir: str) -> list[int]:
    """PIDs of Snakemake processes whose working directory is ``workdir`` (Linux /proc)."""
    target = os.path.realpath(workdir)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.path.realpath(os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
        if "snakemake" in command and "bert_pretraining.locks" not in command and cwd == target:
            pids.append(int(entry))
    return pids


def clear_stale_lock(workdir: str = ".") -> str:
    """Remove .snakemake/locks if no Snakemake runs here; return what was done."""
    locks = os.path.join(workdir, ".snakemake", "locks")
    if not os.path.isdir(locks) or not os.listdir(locks):
        return "no lock"
    running = snakemake_processes_in(workdir)
    if running:
        return f"locked by a running Snakemake (pid {', '.join(map(str, running))}); left in place"
    shutil.rmtree(locks)
    return "removed a stale lock left by a killed run"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default=".")
    args = parser.parse_args(argv)
    outcome = clear_stale_lock(args.workdir)
    if outcome.startswith("removed"):
        print(outcome, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
