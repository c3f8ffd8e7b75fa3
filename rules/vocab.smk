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
        flags=format_flags(job_values("vocab", SETTINGS)),
    shell:
        "{PYTHON} {SCRIPTS}/train_vocab.py {params.source} {params.flags}"
        " --output={output:q} > {log:q} 2>&1"


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
        flags=format_flags(job_values("bert_config", SETTINGS)),
    shell:
        "{PYTHON} {SCRIPTS}/write_bert_config.py --vocab={input.vocab:q} {params.flags}"
        " --output={output:q} > {log:q} 2>&1"
