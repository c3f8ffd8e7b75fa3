# BERT pretraining, FinBERT style: corpus -> shards -> vocabulary -> records
# -> phase 1 segments -> phase 2 segments -> evaluation -> export.
# `snakemake -n` shows the whole plan; README.md explains how to run it.
from snakemake.utils import min_version

min_version("9.0")


include: "rules/config.smk"


configfile: WORKFLOW_CONFIG


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/vocab.smk"
include: "rules/records.smk"
include: "rules/pretrain.smk"
include: "rules/evaluate.smk"
include: "rules/export.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
