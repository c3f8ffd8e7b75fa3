"""One shard: text -> TFRecords and a stats file (Google's create_pretraining_data.py main).

Reads and tokenises the shard (:mod:`.documents`), makes the serialised
Examples (:mod:`.pretraining_examples`: Google's algorithm of
:mod:`.instances`, accelerated in C), writes them as TFRecords
(:mod:`.tfrecords`) and the stats file the records sidecar is summed from
(:mod:`.records_sidecar`). No TensorFlow. Memory is bounded by one shard: its
token ids plus its serialised Examples.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import asdict

from . import pretraining_examples
from .documents import read_tokenized_documents
from .errors import ConfigError, CorpusError
from .files import AtomicFile
from .instances import InstanceOptions, VocabInfo, check_instance_options
from .progress import Progress
from .tfrecords import TFRecordWriter
from .tokenization import UNK_TOKEN, case_mismatch_warning, read_vocabulary, tokenizer_from_vocab, vocab_sha256

log = logging.getLogger(__name__)


def create_pretraining_data(
    input_files: list[str],
    output_files: list[str],
    vocab_file: str,
    options: InstanceOptions,
    do_lower_case: bool,
    random_seed: int,
    stats_file: str | None = None,
) -> dict:
    """Google's create_pretraining_data.py main, without TensorFlow.

    Instances are written round-robin over ``output_files`` like Google's.
    All outputs (and ``stats_file``) appear only when complete; a failing run
    leaves existing files untouched. Same inputs, flags and seed give
    byte-identical records. Returns the stats (also written to ``stats_file``).
    """
    check_instance_options(options)
    if pretraining_examples.compiled is None:
        log.warning(
            "bert_pretraining._fast_instances is not built (no C compiler at install time?): "
            "building instances in Python, about 3x slower; `pip install -e .` with gcc builds it"
        )
    if not input_files:
        raise ConfigError("--input_file is empty; expected one or more corpus files or patterns")
    if not output_files:
        raise ConfigError("--output_file is empty; expected one or more output paths")
    if len(set(output_files)) != len(output_files):
        raise ConfigError(f"--output_file names a file twice ({','.join(output_files)}); expected distinct files")
    for path in input_files:
        if os.path.getsize(path) == 0:
            raise CorpusError(f"{path}: the input file is empty; expected one sentence per line")

    tokens = read_vocabulary(vocab_file)
    warning = case_mismatch_warning(tokens, do_lower_case)
    if warning:
        log.warning("%s: %s", vocab_file, warning)
    vocab = VocabInfo.from_tokens(tokens)
    tokenizer = tokenizer_from_vocab({token: index for index, token in enumerate(tokens)}, do_lower_case)
    label = os.path.splitext(os.path.basename(output_files[0]))[0]

    max_num_tokens = options.max_seq_length - 3
    documents, text = read_tokenized_documents(
        input_files, tokenizer, tokens.index(UNK_TOKEN), max_num_tokens, label=f"tokenize {label}"
    )
    if not documents:
        raise CorpusError(
            f"{', '.join(input_files)}: no sentence gives any token; expected text in BERT's format"
        )
    log.info(
        "%d documents, %d sentences, %d tokens (%d [UNK]); %d single-sentence documents kept "
        "(their next segment is always random); %d sentences longer than %d tokens will be truncated",
        text.documents,
        text.sentences,
        text.tokens,
        text.unknown_tokens,
        text.single_sentence_documents,
        text.sentences_longer_than_sequence,
        max_num_tokens,
    )

    rng = random.Random(random_seed)
    with Progress(
        f"records {label}", total=options.dupe_factor * len(documents), unit="documents", rate_unit="docs"
    ) as progress:
        examples, counts = pretraining_examples.serialized_examples(
            documents, options, vocab, rng, lambda: progress.update(1)
        )
    del documents
    warning = unsplit_text_warning(text, max_num_tokens)
    if warning:
        log.warning("%s: %s", ", ".join(input_files), warning)

    writers = [TFRecordWriter(path) for path in output_files]
    outputs: list = list(writers)
    try:
        # Round-robin over the files, like Google's.
        for number, writer in enumerate(writers):
            writer.write_many(examples[number :: len(writers)])
        for writer in writers:
            writer.close()
        stats = {
            "num_instances": len(examples),
            "files": [
                # Size and digest: what check_<phase> and the repair compare each file with.
                {"file": os.path.basename(path), "num_instances": writer.count, "bytes": writer.bytes,
                 "sha256": writer.sha256}
                for path, writer in zip(output_files, writers)
            ],
            "input_files": list(input_files),
            "vocab_file": vocab_file,
            "vocab_sha256": vocab_sha256(vocab_file),
            "vocab_size": vocab.size,
            **asdict(options),
            "do_lower_case": do_lower_case,
            "random_seed": random_seed,
            "documents": text.documents,
            "sentences": text.sentences,
            "tokens": text.tokens,
            "unknown_tokens": text.unknown_tokens,
            "sentences_without_tokens": text.sentences_without_tokens,
            "single_sentence_documents": {"kept": text.single_sentence_documents, "skipped": 0},
            "sentences_longer_than_sequence": text.sentences_longer_than_sequence,
            "instances_truncated": counts.instances_truncated,
            "tokens_truncated": counts.tokens_truncated,
            "random_next_instances": counts.random_next,
            "masked_positions_histogram": histogram(counts.by_masked_positions),
            "sequence_length_histogram": histogram(counts.by_length),
        }
        if stats_file:
            stats_output = AtomicFile(stats_file, "w")
            outputs.append(stats_output)
            stats_output.write(json.dumps(stats, indent=2) + "\n")
            stats_output.close()
        # Everything is complete on disk: only now take the final names.
        for output in outputs:
            output.commit()
    except BaseException:
        for output in outputs:
            output.discard()  # a no-op for any already committed
        raise
    log.info(
        "wrote %d instances to %s (%d truncated, %d random next)",
        len(examples),
        ", ".join(output_files),
        counts.instances_truncated,
        counts.random_next,
    )
    return stats


# Above these shares the text looks unsplit (documents or paragraphs where sentences were expected).
LOST_TOKENS_WARNING = 0.05
SINGLE_SENTENCE_DOCUMENTS_WARNING = 0.5


def unsplit_text_warning(text, max_num_tokens: int) -> str | None:
    """A warning when much of the text never reaches training, or most next-sentence pairs are random.

    The tokens of a sentence past ``max_num_tokens`` are never trained on,
    whatever the instance it lands in: they measure what the lack of
    sentence splitting costs.
    """
    lost = text.tokens_beyond_sequence / max(1, text.tokens)
    single = text.single_sentence_documents / max(1, text.documents)
    if lost <= LOST_TOKENS_WARNING and single <= SINGLE_SENTENCE_DOCUMENTS_WARNING:
        return None
    return (
        f"the text looks unsplit: {lost:.0%} of its tokens never reach training ({text.sentences_longer_than_sequence} "
        f"of {text.sentences} sentences are longer than the {max_num_tokens} tokens a sequence holds and are cut), and "
        f"{single:.0%} of the documents have a single sentence (their next-sentence pairs are always random). "
        "Expected one sentence per line: set corpus.format (document_per_line, document_per_file, jsonl, parquet) "
        "or corpus.split_sentences: true so that the preparation splits the documents into sentences, "
        "or lower corpus.max_sentence_chars"
    )


def histogram(counts: list[int]) -> dict[str, int]:
    """``{"n": count}`` for the non-zero counts, as the stats file has them."""
    return {str(n): count for n, count in enumerate(counts) if count}
