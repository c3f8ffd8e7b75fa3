"""How much disk a run will need, known before it starts (scratch quotas are finite).

Checkpoints: every float32 weight plus Adam's two moments, i.e. 12 bytes per
parameter (BERT-base with a 50,000 vocabulary: about 1.3 GB). A phase keeps
its newest ``keep_checkpoints`` intermediate checkpoints and every segment's
final one, twice: the published one and its copy in .segment-ends/ (a copy,
so that damage to one leaves the other). Records: measured on the demo corpus (make demo, dupe factor 2),
the records take RECORD_BYTES_PER_CORPUS_BYTE bytes per corpus byte and per
dupe; length 512 takes more because short documents leave instances padded
with zeros (one byte each as varints). A corpus of long documents needs less.
"""

from __future__ import annotations

from .bert_config import BertConfig, parameter_count
from .corpus_sources import uncompressed_size
from .settings import Settings, corpus_files

# Measured on the demo corpus (make demo): bytes of records per corpus byte per dupe.
RECORD_BYTES_PER_CORPUS_BYTE = {128: 3.2, 512: 6.6}
BYTES_PER_PARAMETER_IN_CHECKPOINT = 12  # weight + adam_m + adam_v, float32


def estimate_disk(settings: Settings, vocab_size: int | None = None) -> dict:
    """Bytes for records, checkpoints and the corpus shards, with the counts behind them."""
    model = settings.model
    config = BertConfig(vocab_size=vocab_size or settings.vocabulary.size, **model.bert_config())
    parameters = parameter_count(config, model.use_next_sentence_prediction)  # the checkpoint holds every variable
    checkpoint = parameters * BYTES_PER_PARAMETER_IN_CHECKPOINT
    kept_checkpoints = 2 * len(settings.segments) + settings.training.keep_checkpoints * len(settings.phases)
    # Text bytes, not file bytes: compressed files are estimated from their first MiB.
    corpus = sum(uncompressed_size(path) for path in corpus_files(settings))
    dupe = settings.records.dupe_factor
    records = {
        phase.name: int(corpus * dupe * RECORD_BYTES_PER_CORPUS_BYTE.get(phase.max_seq_length, 6.6))
        for phase in settings.phases
    }
    return {
        "parameters": parameters,
        "checkpoint_bytes": checkpoint,
        "checkpoints_kept": kept_checkpoints,
        "checkpoints_total_bytes": checkpoint * kept_checkpoints,
        "corpus_bytes": corpus,
        "prepared_bytes": corpus,
        "shards_bytes": corpus,
        "records_bytes": records,
        "total_bytes": checkpoint * kept_checkpoints + 2 * corpus + sum(records.values()),
    }


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1000
    return f"{count:.1f} TB"


def format_estimate(estimate: dict) -> str:
    lines = [
        f"model: {estimate['parameters'] / 1e6:.1f} M parameters, "
        f"{human_bytes(estimate['checkpoint_bytes'])} per checkpoint (weights + Adam moments)",
        f"checkpoints kept: {estimate['checkpoints_kept']} "
        f"(every segment's final one and its copy + keep_checkpoints per phase): {human_bytes(estimate['checkpoints_total_bytes'])}",
        f"prepared corpus (one file per input file): {human_bytes(estimate['prepared_bytes'])}",
        f"corpus shards: {human_bytes(estimate['shards_bytes'])}",
    ]
    for phase, size in estimate["records_bytes"].items():
        lines.append(f"records for {phase}: about {human_bytes(size)}")
    lines.append(f"total: about {human_bytes(estimate['total_bytes'])}")
    return "\n".join(lines)
