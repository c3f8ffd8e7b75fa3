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
        flags=records_flags,
    shell:
        "{PYTHON} {SCRIPTS}/create_pretraining_data.py"
        " --input_file={input.text:q} --output_file={output.records:q}"
        " --vocab_file={input.vocab:q} {params.flags}"
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
        " --heldout_stats={input.heldout:q} --output={output:q} > {log:q} 2>&1"
