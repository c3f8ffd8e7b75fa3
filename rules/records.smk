# Shards -> pretraining TFRecords, one job per shard and sequence length, in
# the exact feature layout of Google's create_pretraining_data.py; then a
# sidecar (records.json) that training checks its flags against.


rule create_records:
    input:
        text=LAYOUT.corpus_text("{part}"),
        vocab=LAYOUT.vocab,
    output:
        records=LAYOUT.records_file("{seq}", "{part}"),
        stats=LAYOUT.records_stats("{seq}", "{part}"),
    log:
        LAYOUT.log("create_records", seq="{seq}", part="{part}"),
    benchmark:
        LAYOUT.benchmark("create_records", seq="{seq}", part="{part}")
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
        stats=[LAYOUT.records_stats("{seq}", part) for part in SHARDS],
        heldout=LAYOUT.records_stats("{seq}", HELDOUT_PART),
    output:
        LAYOUT.records_sidecar("{seq}"),
    log:
        LAYOUT.log("summarize_records", seq="{seq}"),
    benchmark:
        LAYOUT.benchmark("summarize_records", seq="{seq}")
    shell:
        "{PYTHON} {SCRIPTS}/summarize_records.py --stats {input.stats:q}"
        " --heldout-stats {input.heldout:q} --output {output:q} > {log:q} 2>&1"
