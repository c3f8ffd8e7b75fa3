# The final export: the last phase's final checkpoint as a model people can
# use: Google's release layout (tf/: model variables only, bert_config.json,
# vocab.txt), a Transformers directory (hf/: config.json, model.safetensors,
# tokenizer files) and a model card (README.md) with every phase's
# evaluation. The directory appears only when the export is complete.

_EXPORT_PHASE_KEYS = (
    "name",
    "max_seq_length",
    "max_predictions_per_seq",
    "first_step",
    "last_step",
    "batch_size_per_gpu",
    "num_train_steps",
    "num_warmup_steps",
)


rule export_model:
    input:
        index=phase_final_checkpoint(PHASES[-1].name)["index"],
        data=phase_final_checkpoint(PHASES[-1].name)["data"],
        bert_config=LAYOUT.bert_config,
        vocab=LAYOUT.vocab,
        evals=[LAYOUT.eval_json(phase.name) for phase in PHASES],
        sidecars=[LAYOUT.records_sidecar(seq) for seq in SEQ_LENGTHS],
    output:
        directory(LAYOUT.export_dir),
    log:
        LAYOUT.log("export_model"),
    benchmark:
        LAYOUT.benchmark("export_model")
    params:
        flags=format_flags(job_values("export", SETTINGS)),
        phases=json.dumps(
            [
                {key: getattr(phase, key) for key in _EXPORT_PHASE_KEYS}
                for phase in PHASES
            ]
        ),
        name=SETTINGS.run_name,
        initialised_from=SETTINGS.init_from.directory if SETTINGS.init_from else "",
    shell:
        "{PYTHON} {SCRIPTS}/export_model.py --checkpoint={input.index:q}"
        " --bert_config_file={input.bert_config:q} --vocab_file={input.vocab:q} {params.flags}"
        " --eval_json {input.evals:q} --records_sidecar {input.sidecars:q}"
        " --phases_json={params.phases:q} --model_name={params.name:q}"
        " --initialised_from={params.initialised_from:q}"
        " --output={output:q} > {log:q} 2>&1"
