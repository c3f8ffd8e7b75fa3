# Read before the Snakefile's `configfile:` directive: a YAML error in the
# workflow's config.yaml is reported naming the file and the line. Snakemake's
# own message names neither (docs/upstream/snakemake-configfile-yaml-error.md);
# it reads each --configfile before the Snakefile, where nothing here can help.
import os
import sys
from pathlib import Path

# The package is importable without installation at dry-run time.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from bert_pretraining.errors import ConfigError
from bert_pretraining.settings import WORKFLOW_CONFIG, read_config_file

# A missing config.yaml is Snakemake's to judge: it is optional when --configfile is given.
if os.path.exists(WORKFLOW_CONFIG):
    try:
        read_config_file(WORKFLOW_CONFIG)
    except ConfigError as error:
        raise WorkflowError(f"invalid configuration: {error}") from None
