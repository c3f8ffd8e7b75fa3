"""User-facing errors.

Everything a user can cause (a bad config value, a corpus file that is not
UTF-8, records that do not match the training flags) is raised as a
``WorkflowError`` whose message names the file, key or value and what was
expected. Scripts print it as one line and exit with status 2, instead of a
traceback from deep inside a library. So is a file the user has made
unwritable (a run directory left read-only, a file system mounted read-only).
"""

import contextlib
import errno
import logging
import os
import sys
import traceback

# What a user can do to the run's files: take away their permissions (EACCES,
# EPERM) or mount them read-only (EROFS). Other OSErrors keep their traceback.
PERMISSION_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


class WorkflowError(Exception):
    """A problem with the user's input or configuration, explained in the message."""


class ConfigError(WorkflowError):
    """A configuration value is missing, malformed or inconsistent."""


class CorpusError(WorkflowError):
    """A corpus file is missing, empty or not in BERT's text format."""


class VocabularyError(WorkflowError):
    """A vocabulary file is missing or lacks a required special token."""


class RecordsError(WorkflowError):
    """Pretraining records do not exist or do not match what training expects."""


class CheckpointError(WorkflowError):
    """A checkpoint is missing, incomplete, corrupt or does not fit the model."""


def run_main(main, argv=None):
    """Run ``main(argv)``; report a WorkflowError or a permission error as one clear line, exit 2."""
    try:
        return main(argv)
    except WorkflowError as error:
        cause = error.__cause__
        advice = f"; {permission_advice(cause)}" if is_permission_error(cause) else ""
        print(f"error: {error}{advice}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        if not is_permission_error(error):
            raise
        print(f"error: cannot access {os.fsdecode(error.filename)}: {permission_reason(error)}; "
              f"{permission_advice(error)}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def exiting_at_once_on_crash(enabled: bool = True):
    """An unexpected error ends the process at once: traceback, logs flushed, os._exit(1).

    For a rank of a multi-rank job. When another rank dies, the survivors' next collective
    fails at once, but the interpreter's teardown after the traceback (tf.data's thread pools,
    the final garbage collection) took over two minutes beside a busy neighbour, holding the
    GPU. Errors a user can fix (WorkflowError, permissions) still reach run_main's one line.
    """
    try:
        yield
    except WorkflowError:
        raise
    except Exception as error:
        if not enabled or is_permission_error(error):
            raise
        traceback.print_exc()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def is_permission_error(error) -> bool:
    """An OSError about a named file that the user's permissions or mounts refuse."""
    return isinstance(error, OSError) and error.errno in PERMISSION_ERRNOS and error.filename is not None


def permission_reason(error: OSError) -> str:
    return "read-only file system" if error.errno == errno.EROFS else "permission denied"


def permission_advice(error: OSError) -> str:
    """What to run so that the job can write the file of ``error``."""
    if error.errno == errno.EROFS:
        return "put results_dir on a writable file system (or remount it read-write) and rerun"
    locked = locked_directory(os.fsdecode(error.filename))
    return f"give this user read and write access (chmod -R u+rwX {locked}; g+rwX if a group shares the run) and rerun"


def locked_directory(path: str) -> str:
    """The outermost of the unwritable directories that hold ``path``; ``path`` itself if none is.

    A run directory made read-only (chmod -R a-w results/demo) is named whole,
    rather than the one file the job happened to open first.
    """
    locked = path
    directory = os.path.dirname(os.path.normpath(path))
    while directory and os.path.isdir(directory) and not os.access(directory, os.W_OK | os.X_OK):
        locked = directory
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return locked
