# Corpus files as people have them -> prepared BERT-format text (one job per
# file) -> deterministic shards of unique whole documents, a held-out split,
# and the corpus statistics.
from bert_pretraining.report import corpus_statistics_path
from bert_pretraining.prepare import (
    corpus_sample_warnings,
    preparation_settings,
    prepared_directory,
    prepared_name,
    statistics_name,
)

CORPUS_FILES = corpus_files(SETTINGS)
PREPARED = prepared_directory(RESULTS)

# Text given as sentences that looks like documents is said before anything runs.
if workflow.is_main_process:
    for _warning in corpus_sample_warnings(CORPUS_FILES, SETTINGS.corpus):
        logger.warning(f"WARNING: {_warning}")


rule prepare_corpus:
    input:
        lambda wildcards: CORPUS_FILES[int(wildcards.index)],
    output:
        text=f"{PREPARED}/file_{{index}}.txt",
        statistics=f"{PREPARED}/file_{{index}}.json",
    log:
        f"{LOGS}/prepare_corpus/file_{{index}}.log",
    benchmark:
        f"{BENCHMARKS}/prepare_corpus/file_{{index}}.tsv"
    params:
        corpus=json.dumps(preparation_settings(SETTINGS.corpus)),
    shell:
        "{PYTHON} {SCRIPTS}/prepare_corpus.py --input {input:q} --corpus {params.corpus:q}"
        " --output {output.text:q} --statistics {output.statistics:q} > {log:q} 2>&1"


rule shard_corpus:
    input:
        text=[f"{PREPARED}/{prepared_name(i)}" for i in range(len(CORPUS_FILES))],
        statistics=[
            f"{PREPARED}/{statistics_name(i)}" for i in range(len(CORPUS_FILES))
        ],
    output:
        shards=expand("{results}/corpus/{shard}.txt", results=RESULTS, shard=SHARDS),
        heldout=f"{RESULTS}/corpus/heldout.txt",
        statistics=corpus_statistics_path(RESULTS),
    log:
        f"{LOGS}/shard_corpus.log",
    benchmark:
        f"{BENCHMARKS}/shard_corpus.tsv"
    params:
        num_shards=SETTINGS.corpus.num_shards,
        heldout_fraction=SETTINGS.corpus.heldout_fraction,
        seed=SETTINGS.corpus.seed,
        deduplicate="--deduplicate" if SETTINGS.corpus.deduplicate else "",
        output_dir=lambda wildcards, output: os.path.dirname(output.heldout),
    shell:
        "{PYTHON} {SCRIPTS}/shard_corpus.py --input {input.text:q}"
        " --file-statistics {input.statistics:q} {params.deduplicate}"
        " --num-shards {params.num_shards} --heldout-fraction {params.heldout_fraction}"
        " --seed {params.seed} --output-dir {params.output_dir:q}"
        " --statistics {output.statistics:q} > {log:q} 2>&1"
