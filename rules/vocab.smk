# Training shards -> WordPiece vocabulary (or the user's vocabulary, checked,
# or the vocabulary of the model continued from, init_from), and the model's
# bert_config.json, whose vocab_size is the vocabulary's.
from bert_pretraining.status import vocabulary_inputs


rule train_vocab:
    input:
        given=vocabulary_inputs(SETTINGS)["given"],
        shards=vocabulary_inputs(SETTINGS)["shards"],
    output:
        LAYOUT.vocab,
    log:
        LAYOUT.log("train_vocab"),
    benchmark:
        LAYOUT.benchmark("train_vocab")
    params:
        source=vocabulary_source,
        size=SETTINGS.vocabulary.size,
        min_frequency=SETTINGS.vocabulary.min_frequency,
        lower_case="--do-lower-case" if SETTINGS.vocabulary.do_lower_case else "",
        sample=(
            f"--sample-bytes {SETTINGS.vocabulary.sample_bytes} --sample-seed {SETTINGS.vocabulary.sample_seed}"
            if SETTINGS.vocabulary.sample_bytes
            else ""
        ),
    shell:
        "{PYTHON} {SCRIPTS}/train_vocab.py {params.source} --output {output:q}"
        " --vocab-size {params.size} --min-frequency {params.min_frequency}"
        " {params.lower_case} {params.sample} > {log:q} 2>&1"


rule write_bert_config:
    input:
        vocab=LAYOUT.vocab,
    output:
        LAYOUT.bert_config,
    log:
        LAYOUT.log("write_bert_config"),
    benchmark:
        LAYOUT.benchmark("write_bert_config")
    params:
        model=json.dumps(SETTINGS.model.bert_config()),
    shell:
        "{PYTHON} {SCRIPTS}/write_bert_config.py --vocab {input.vocab:q}"
        " --model {params.model:q} --output {output:q} > {log:q} 2>&1"
