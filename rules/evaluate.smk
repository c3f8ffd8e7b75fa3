# After each phase: masked-LM and NSP accuracy and loss on the held-out records,
# beside the baseline of always predicting the training records' most frequent
# masked token (the sidecar stands for the training record files).

for _phase in PHASES:

    rule:
        name:
            f"evaluate_{_phase.name}"
        input:
            **phase_final_checkpoint(_phase.name),
            bert_config=f"{RESULTS}/bert_config.json",
            records=f"{records_dir(_phase.max_seq_length)}/heldout.tfrecord",
            sidecar=f"{records_dir(_phase.max_seq_length)}/records.json",
            vocab=f"{RESULTS}/vocab.txt",
        output:
            f"{RESULTS}/{_phase.name}/eval.json",
        log:
            f"{LOGS}/{_phase.name}/evaluate.log",
        benchmark:
            f"{BENCHMARKS}/{_phase.name}/evaluate.tsv"
        params:
            flags=format_flags(job_values("evaluate", SETTINGS, _phase)),
            training=f"{records_dir(_phase.max_seq_length)}/shard_*.tfrecord",
        shell:
            "{PYTHON} {SCRIPTS}/evaluate.py --checkpoint {input.index:q}"
            " --bert_config_file {input.bert_config:q} --input_file {input.records:q}"
            " --records_sidecar {input.sidecar:q} --training_file {params.training:q}"
            " --vocab_file {input.vocab:q} {params.flags}"
            " --output {output:q} > {log:q} 2>&1"
