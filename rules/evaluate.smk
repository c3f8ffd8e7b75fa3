# After each phase: masked-LM and NSP accuracy and loss on the held-out records,
# beside the baseline of always predicting the training records' most frequent
# masked token (the sidecar stands for the training record files).

for _phase in PHASES:

    rule:
        name:
            f"evaluate_{_phase.name}"
        input:
            **phase_final_checkpoint(_phase.name),
            bert_config=LAYOUT.bert_config,
            records=LAYOUT.records_file(_phase.max_seq_length, HELDOUT_PART),
            sidecar=LAYOUT.records_sidecar(_phase.max_seq_length),
            vocab=LAYOUT.vocab,
        output:
            LAYOUT.eval_json(_phase.name),
        log:
            LAYOUT.log("evaluate", phase=_phase.name),
        benchmark:
            LAYOUT.benchmark("evaluate", phase=_phase.name)
        params:
            flags=format_flags(job_values("evaluate", SETTINGS, _phase)),
            training=LAYOUT.training_records(_phase.max_seq_length),
        shell:
            "{PYTHON} {SCRIPTS}/evaluate.py --checkpoint {input.index:q}"
            " --bert_config_file {input.bert_config:q} --input_file {input.records:q}"
            " --records_sidecar {input.sidecar:q} --training_file {params.training:q}"
            " --vocab_file {input.vocab:q} {params.flags}"
            " --output {output:q} > {log:q} 2>&1"
