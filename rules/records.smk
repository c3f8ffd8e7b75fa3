# Shards -> pretraining TFRecords, one job per shard and sequence length, in
# the exact feature layout of Google's create_pretraining_data.py; then a
# sidecar (records.json) that training checks its flags against.


rule create_records:
    input:
        text=f"{RESULTS}/corpus/{{part}}.txt",
        vocab=f"{RESULTS}/vocab.txt",
    output:
        records=f"{RESULTS}/records/seq{{seq}}/{{part}}.tfrecord",
        stats=f"{RESULTS}/records/seq{{seq}}/{{part}}.json",
    log:
        f"{LOGS}/records/seq{{seq}}/{{part}}.log",
    benchmark:
        f"{BENCHMARKS}/records/seq{{seq}}/{{part}}.tsv"
    params:
        max_predictions=lambda wildcards: SETTINGS.phase_for_length(
            wildcards.seq
        ).max_predictions_per_seq,
        seed=records_seed,
        lower_case=shell_bool(SETTINGS.vocabulary.do_lower_case),
        whole_word=shell_bool(SETTINGS.records.do_whole_word_mask),
        dupe_factor=SETTINGS.records.dupe_factor,
        masked_lm_prob=SETTINGS.records.masked_lm_prob,
        short_seq_prob=SETTINGS.records.short_seq_prob,
    shell:
        "{PYTHON} {SCRIPTS}/create_pretraining_data.py"
        " --input_file={input.text:q} --output_file={output.records:q}"
        " --vocab_file={input.vocab:q} --do_lower_case={params.lower_case}"
        " --do_whole_word_mask={params.whole_word}"
        " --max_seq_length={wildcards.seq} --max_predictions_per_seq={params.max_predictions}"
        " --random_seed={params.seed} --dupe_factor={params.dupe_factor}"
        " --masked_lm_prob={params.masked_lm_prob} --short_seq_prob={params.short_seq_prob}"
        " --stats_file={output.stats:q} > {log:q} 2>&1"


rule summarize_records:
    input:
        stats=expand(
            "{results}/records/seq{{seq}}/{shard}.json", results=RESULTS, shard=SHARDS
        ),
        heldout=f"{RESULTS}/records/seq{{seq}}/heldout.json",
    output:
        f"{RESULTS}/records/seq{{seq}}/records.json",
    log:
        f"{LOGS}/records/seq{{seq}}/summarize.log",
    benchmark:
        f"{BENCHMARKS}/records/seq{{seq}}/summarize.tsv"
    shell:
        "{PYTHON} {SCRIPTS}/summarize_records.py --stats {input.stats:q}"
        " --heldout-stats {input.heldout:q} --output {output:q} > {log:q} 2>&1"
