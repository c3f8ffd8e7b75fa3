"""Small helpers shared by the command-line scripts."""

from __future__ import annotations

import argparse
import logging
import os


def str2bool(value: str) -> bool:
    """absl-style booleans: true/false, 1/0, yes/no (any case)."""
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "y", "t"):
        return True
    if lowered in ("false", "0", "no", "n", "f", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_bool_flag(parser: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    """``--name``, ``--name=true|false`` and ``--noname``, as Google's absl flags accept."""
    parser.add_argument(f"--{name}", nargs="?", const=True, default=default, type=str2bool, help=help)
    parser.add_argument(f"--no{name}", dest=name, action="store_false", help=argparse.SUPPRESS)


def setup_logging(rank: int = 0) -> None:
    prefix = f"[rank {rank}] " if rank else ""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {prefix}%(levelname)s %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    # TensorFlow's C++ start-up chatter hides the lines that matter.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


def add_configfile_flag(parser: argparse.ArgumentParser) -> None:
    """``--configfile F [F ...]`` as Snakemake takes it: merged over the workflow's config.yaml, in order."""
    parser.add_argument(
        "--configfile", nargs="+", action="extend", default=[], metavar="FILE",
        help="config files merged over config.yaml in order, as `snakemake --configfile` merges them",
    )
