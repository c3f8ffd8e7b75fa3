"""Small helpers shared by the command-line scripts."""

from __future__ import annotations

import argparse
import logging
import os


TRUE_SPELLINGS = ("true", "t", "1", "yes", "y")
FALSE_SPELLINGS = ("false", "f", "0", "no", "n")


def str2bool(value: str) -> bool:
    """The one parser of boolean flag values: absl's true/t/1, false/f/0, and yes/y, no/n, in any case.

    An empty value is an error, not false: ``--do_lower_case=`` is more likely
    a missing value than a decision.
    """
    lowered = str(value).strip().lower()
    if lowered in TRUE_SPELLINGS:
        return True
    if lowered in FALSE_SPELLINGS:
        return False
    raise argparse.ArgumentTypeError(
        f"expected true or false ({'/'.join(TRUE_SPELLINGS)} or {'/'.join(FALSE_SPELLINGS)}, any case), got {value!r}"
    )


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
