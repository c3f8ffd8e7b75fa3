# Corpus files as people have them -> prepared BERT-format text (one job per
# file) -> deterministic shards of unique whole documents, a held-out split,
# and the corpus statistics.
from bert_pretraining.prepare import corpus_sample_warnings

CORPUS_FILES = corpus_files(SETTINGS)

# Text given as sentences that looks like documents is said before anything runs.
if workflow.is_main_process:
    for _warning in corpus_sample_warnings(CORPUS_FILES, SETTINGS.corpus):
        logger.warning(f"WARNING: {_warning}")


rule prepare_corpus:
    input:
        lambda wildcards: CORPUS_FILES[int(wildcards.index)],
    output:
        text=LAYOUT.prepared_text("{index}"),
        statistics=LAYOUT.prepared_statistics("{index}"),
    log:
        LAYOUT.log("prepare_corpus", index="{index}"),
    benchmark:
        LAYOUT.benchmark("prepare_corpus", index="{index}")
    params:
        flags=format_flags(job_values("prepare", SETTINGS)),
    shell:
        "{PYTHON} {SCRIPTS}/prepare_corpus.py --input={input:q} {params.flags}"
        " --output={output.text:q} --statistics={output.statistics:q} > {log:q} 2>&1"


rule shard_corpus:
    input:
        text=[LAYOUT.prepared_text(i) for i in range(len(CORPUS_FILES))],
        statistics=[LAYOUT.prepared_statistics(i) for i in range(len(CORPUS_FILES))],
    output:
        shards=[LAYOUT.corpus_text(part) for part in SHARDS],
        heldout=LAYOUT.heldout,
        statistics=LAYOUT.corpus_statistics,
    log:
        LAYOUT.log("shard_corpus"),
    benchmark:
        LAYOUT.benchmark("shard_corpus")
    params:
        flags=format_flags(job_values("shard", SETTINGS)),
        output_dir=lambda wildcards, output: os.path.dirname(output.heldout),
    shell:
        "{PYTHON} {SCRIPTS}/shard_corpus.py --input {input.text:q}"
        " --file_statistics {input.statistics:q} {params.flags}"
        " --output_dir={params.output_dir:q} --statistics={output.statistics:q} > {log:q} 2>&1"
