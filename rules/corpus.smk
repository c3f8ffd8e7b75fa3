# Raw text -> deterministic shards of whole documents, plus a held-out split.


rule shard_corpus:
    input:
        corpus_files(SETTINGS),
    output:
        shards=expand("{results}/corpus/{shard}.txt", results=RESULTS, shard=SHARDS),
        heldout=f"{RESULTS}/corpus/heldout.txt",
    log:
        f"{LOGS}/shard_corpus.log",
    benchmark:
        f"{BENCHMARKS}/shard_corpus.tsv"
    params:
        num_shards=SETTINGS.corpus.num_shards,
        heldout_fraction=SETTINGS.corpus.heldout_fraction,
        seed=SETTINGS.corpus.seed,
        output_dir=lambda wildcards, output: os.path.dirname(output.heldout),
    shell:
        "{PYTHON} {SCRIPTS}/shard_corpus.py --input {input:q}"
        " --num-shards {params.num_shards} --heldout-fraction {params.heldout_fraction}"
        " --seed {params.seed} --output-dir {params.output_dir:q} > {log:q} 2>&1"
