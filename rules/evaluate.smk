# After each phase: masked-LM and NSP accuracy and loss on the held-out records.


for _phase in PHASES:

    rule:
        name:
            f"evaluate_{_phase['name']}"
        input:
            unpack(
                lambda wildcards, name=_phase["name"]: {
                    **phase_final_checkpoint(name),
                    "bert_config": f"{RESULTS}/bert_config.json",
                    "records": f"{records_dir(PHASES_BY_NAME[name]['max_seq_length'])}/heldout.tfrecord",
                    "sidecar": f"{records_dir(PHASES_BY_NAME[name]['max_seq_length'])}/records.json",
                }
            ),
        output:
            f"{RESULTS}/{_phase['name']}/eval.json",
        params:
            max_seq_length=_phase["max_seq_length"],
            max_predictions=_phase["max_predictions_per_seq"],
            batch_size=config["training"]["eval_batch_size"],
            nsp=config["model"]["use_next_sentence_prediction"],
        log:
            f"{LOGS}/{_phase['name']}/evaluate.log",
        benchmark:
            f"{BENCHMARKS}/{_phase['name']}/evaluate.tsv"
        shell:
            "{PYTHON} {SCRIPTS}/evaluate.py --checkpoint {input.index:q}"
            " --bert_config_file {input.bert_config:q} --input_file {input.records:q}"
            " --records_sidecar {input.sidecar:q}"
            " --max_seq_length {params.max_seq_length} --max_predictions_per_seq {params.max_predictions}"
            " --batch_size {params.batch_size} --use_next_sentence_prediction {params.nsp}"
            " --output {output:q} > {log:q} 2>&1"
