"""Running Snakemake on a copy of the repository, as a user would."""

import contextlib
import os
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAKEMAKE = os.path.join(os.path.dirname(sys.executable), "snakemake")
# The demo's workflow with fewer steps: what the tests that run the whole DAG run.
DEMO_DAG_CONFIGS = ("demo/config.yaml", "tests/demo_dag.yaml")


def demo_dag_config(repo_dir=REPO):
    """demo/config.yaml with tests/demo_dag.yaml merged over it, as Snakemake merges them."""
    from bert_pretraining.settings import load_config

    return load_config([os.path.join(repo_dir, path) for path in DEMO_DAG_CONFIGS], workflow_config=None)


def tracked_files():
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    return [path for path in listing.stdout.splitlines() if os.path.exists(os.path.join(REPO, path))]


def fresh_clone(destination):
    """The repository's files as a fresh clone has them (no results, no .snakemake)."""
    for path in tracked_files():
        target = os.path.join(destination, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(REPO, path), target)
    return destination


def as_ordinary_user(command):
    """``command`` as the user nobody when run by root (for whom file permissions do not hold); as is otherwise."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *command]


@contextlib.contextmanager
def mounted_tmpfs(mount_point, options):
    """A tmpfs mounted at ``mount_point`` (made here) with ``options``, e.g. "size=4m" or "ro,size=1m"."""
    os.makedirs(mount_point)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        yield str(mount_point)
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def write_yaml(path, content):
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(content, handle, sort_keys=False)
    return path


# Set by tests/conftest.py before each test: whether the test is marked
# `snakemake`. None outside pytest. `make test-fast` deselects the marker, so a
# test that ran Snakemake without it would slow down the fast tier unseen.
SNAKEMAKE_ALLOWED = None


def run_script(name, *args, timeout=120):
    """workflow/scripts/<name> with this interpreter, in the repository (config.yaml's relative paths)."""
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "workflow", "scripts", name), *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )


def snakemake_command(*args):
    """[snakemake, *args], refused in a test that is not marked `snakemake`."""
    if SNAKEMAKE_ALLOWED is False:
        raise AssertionError("this test runs snakemake: mark it @pytest.mark.snakemake (pyproject.toml's markers)")
    return [SNAKEMAKE, *args]


def snakemake(workdir, *args, timeout=1800, env=None):
    return subprocess.run(
        snakemake_command(*args), cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env,
    )
