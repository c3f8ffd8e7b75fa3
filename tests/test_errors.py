"""What users do to their files is reported as one line naming the file and what to do, not a traceback.

Permissions are real: the jobs run as an ordinary user (as root, chmod does
not stop writes) on files under a directory that user may enter.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from bert_pretraining.errors import CheckpointError, run_main
from workflow_helpers import REPO, as_ordinary_user, mounted_tmpfs

PREPARE = os.path.join(REPO, "workflow", "scripts", "prepare_corpus.py")
# The preparation settings of a plain BERT-format text file (the prepare job's flags).
CORPUS_SETTINGS = ["--format=bert", "--language=en", "--split_sentences=false", "--min_document_chars=1"]


def run_as_ordinary_user(command, home):
    # HOME: matplotlib and fontconfig, imported by some scripts, want a writable cache.
    environment = {**os.environ, "HOME": home, "MPLCONFIGDIR": home}
    return subprocess.run(as_ordinary_user(command), capture_output=True, text=True, timeout=300, env=environment)


@pytest.fixture
def shared_dir():
    """A directory that the ordinary user may enter and create files in (tmp_path is root's alone)."""
    directory = tempfile.mkdtemp(prefix="bert-permissions-")
    os.chmod(directory, 0o777)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def test_a_read_only_run_directory_is_one_line_naming_it_and_the_advised_chmod_lets_the_rerun_work(shared_dir):
    corpus = os.path.join(shared_dir, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as handle:
        handle.write("A first sentence of the document.\nA second one.\n")
    os.chmod(corpus, 0o644)
    run_dir = os.path.join(shared_dir, "results", "demo")
    output = os.path.join(run_dir, "corpus", "prepared", "file_0.txt")
    prepare = [
        sys.executable, PREPARE, "--input", corpus, *CORPUS_SETTINGS,
        "--output", output, "--statistics", output.replace(".txt", ".json"),
    ]
    assert run_as_ordinary_user(prepare, shared_dir).returncode == 0
    os.remove(output)
    assert run_as_ordinary_user(["chmod", "-R", "a-w", run_dir], shared_dir).returncode == 0

    refused = run_as_ordinary_user(prepare, shared_dir)

    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: cannot access {output}: permission denied; ")
    advised = re.search(r"\((chmod -R u\+rwX (\S+));", message)
    assert advised and advised.group(2) == run_dir, message  # the whole run directory, not one file

    assert run_as_ordinary_user(advised.group(1).split(), shared_dir).returncode == 0
    rerun = run_as_ordinary_user(prepare, shared_dir)
    assert rerun.returncode == 0, rerun.stderr
    with open(output, encoding="utf-8") as handle:
        assert "A second one." in handle.read()


def test_a_project_error_caused_by_a_permission_error_gets_the_advice_too(shared_dir):
    """As the checkpoint writer reports a save it could not make: a CheckpointError from a real PermissionError."""
    locked = os.path.join(shared_dir, "phase128")
    script = f"""
import os
from bert_pretraining.errors import CheckpointError, run_main

def main(argv):
    os.makedirs({locked!r})
    os.chmod({locked!r}, 0o555)
    try:
        os.makedirs(os.path.join({locked!r}, ".saving-10"))
    except OSError as error:
        raise CheckpointError(f"could not save checkpoint model.ckpt-10 in {locked}: {{error}}") from error

run_main(main)
"""
    result = run_as_ordinary_user([sys.executable, "-c", script], shared_dir)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == (
        f"error: could not save checkpoint model.ckpt-10 in {locked}: [Errno 13] Permission denied: "
        f"'{locked}/.saving-10'; give this user read and write access (chmod -R u+rwX {locked}; "
        "g+rwX if a group shares the run) and rerun"
    )


def test_other_os_errors_keep_their_traceback(tmp_path):
    """A missing file is a bug or a race, not something the user did to the run's files: it stays a traceback."""
    def main(argv):
        open(tmp_path / "missing.txt", encoding="utf-8")

    with pytest.raises(FileNotFoundError):
        run_main(main)


def test_a_project_error_without_a_permission_cause_is_unchanged(tmp_path, capsys):
    def main(argv):
        raise CheckpointError("model.ckpt-10 is incomplete")

    with pytest.raises(SystemExit) as exit_info:
        run_main(main)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: model.ckpt-10 is incomplete\n"


@pytest.mark.faults
def test_a_read_only_file_system_is_named_as_such(tmp_path, capsys):
    with mounted_tmpfs(tmp_path / "readonly", "ro,size=1m") as mount_point:
        path = os.path.join(mount_point, "metrics.jsonl")

        def main(argv):
            open(path, "a", encoding="utf-8")

        with pytest.raises(SystemExit) as exit_info:
            run_main(main)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"error: cannot access {path}: read-only file system; "
        "put results_dir on a writable file system (or remount it read-write) and rerun\n"
    )


# A process whose normal exit waits 60 s for a thread (as a crashed rank's teardown waited for
# tf.data's thread pools), then fails inside exiting_at_once_on_crash.
SLOW_TEARDOWN = """
import sys, threading, time
from bert_pretraining.errors import ConfigError, exiting_at_once_on_crash, run_main
threading.Thread(target=time.sleep, args=(60,)).start()
def main(argv):
    with exiting_at_once_on_crash(enabled=sys.argv[1] == "on"):
        raise {error}("the collective failed: a peer is gone")
run_main(main)
"""


def run_snippet(error, enabled, timeout=30):
    return subprocess.run(
        [sys.executable, "-c", SLOW_TEARDOWN.format(error=error), enabled], capture_output=True, text=True,
        timeout=timeout,
    )


def test_a_crashed_rank_exits_at_once_with_its_traceback():
    result = run_snippet("RuntimeError", "on")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: the collective failed" in result.stderr


def test_a_users_mistake_is_still_one_line_and_without_the_switch_the_teardown_runs():
    with pytest.raises(subprocess.TimeoutExpired) as waited:
        run_snippet("ConfigError", "on", timeout=5)  # run_main's sys.exit(2) waits for the thread
    stderr = waited.value.stderr.decode() if isinstance(waited.value.stderr, bytes) else waited.value.stderr
    assert stderr == "error: the collective failed: a peer is gone\n"
    with pytest.raises(subprocess.TimeoutExpired):
        run_snippet("RuntimeError", "off", timeout=5)
