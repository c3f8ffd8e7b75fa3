"""User-facing errors.

Everything a user can cause (a bad config value, a corpus file that is not
UTF-8, records that do not match the training flags) is raised as a
``WorkflowError`` whose message names the file, key or value and what was
expected. Scripts print it as one line and exit with status 2, instead of a
traceback from deep inside a library.
"""

import sys


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
    """Run ``main(argv)``; report a WorkflowError as one clear line, exit 2."""
    try:
        return main(argv)
    except WorkflowError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
