"""A Transformers model directory's masked-LM (and next-sentence) figures on our held-out records.

The same figures as ``evaluation.evaluate_checkpoint`` computes for a
checkpoint of this project, for any BERT-like model Transformers can load
(our export's ``hf/``, a downloaded model, a model trained with
Transformers): the records are read with this project's input pipeline and
the model is run by Transformers in PyTorch, so one function judges models
from both worlds on the same instances::

    from bert_pretraining.transformers_evaluation import transformers_heldout_metrics
    transformers_heldout_metrics("results/RUN/export/hf", "results/RUN/records/seq128/heldout.tfrecord",
                                 max_seq_length=128, max_predictions_per_seq=20)

The model's vocabulary must be the one the records were made with (the
records hold token ids, not text).

Importing this module needs neither TensorFlow nor PyTorch; calling the
function needs both (TensorFlow reads the records).
"""

from __future__ import annotations

import numpy as np

from .metrics import heldout_means

# Transformers architectures with a next-sentence head, loaded with AutoModelForPreTraining.
NEXT_SENTENCE_ARCHITECTURES = ("BertForPreTraining",)


def _import_torch_and_transformers():
    try:
        import torch
        import transformers
    except ImportError as error:
        raise ImportError(
            f"evaluating a Transformers model needs PyTorch and Transformers ({error}); "
            "pip install torch transformers (or install this package with its [test] extra)"
        ) from error
    return torch, transformers


def has_next_sentence_head(model_dir: str) -> bool:
    """Whether the directory's config.json names an architecture with a next-sentence head."""
    _, transformers = _import_torch_and_transformers()
    architectures = transformers.AutoConfig.from_pretrained(model_dir).architectures or []
    return any(name in NEXT_SENTENCE_ARCHITECTURES for name in architectures)


def transformers_heldout_metrics(model_dir, records_file, *, max_seq_length, max_predictions_per_seq, batch_size=32):
    """Masked-LM loss and accuracy of a Transformers model directory on a record file; NSP too if it has the head.

    Every record once. Masked-LM figures are weighted means over the real
    predictions (``masked_lm_weights`` 1; padding predictions weigh 0), the
    next-sentence ones means over instances: exact sums over all batches
    divided at the end by ``metrics.heldout_means``, as for
    ``evaluation.evaluate_checkpoint``. Returns ``instances``,
    ``masked_lm_accuracy``, ``masked_lm_loss``, for a model with a
    next-sentence head (config.json's ``architectures`` says
    ``BertForPreTraining``) ``next_sentence_accuracy`` and
    ``next_sentence_loss``, and ``loss`` (the pretraining loss: their sum, or
    the masked-LM loss without the head). Memory grows with
    batch_size x max_seq_length x vocabulary (the model scores every position).
    """
    torch, transformers = _import_torch_and_transformers()

    from .inputs import evaluation_dataset

    with_next_sentence = has_next_sentence_head(model_dir)
    loader = transformers.AutoModelForPreTraining if with_next_sentence else transformers.AutoModelForMaskedLM
    model = loader.from_pretrained(model_dir).eval()
    # The sums modeling.pretraining_loss names, for metrics.heldout_means.
    totals = dict(mlm_loss_sum=0.0, mlm_correct_sum=0.0, mlm_weight_sum=0.0, nsp_loss_sum=0.0, nsp_correct_sum=0.0,
                  nsp_example_count=0.0)
    instances = 0
    for features in evaluation_dataset(
        [records_file], batch_size=batch_size, max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq
    ):
        as_torch = {name: torch.from_numpy(value.numpy().astype(np.int64)) for name, value in features.items()
                    if name != "masked_lm_weights"}
        with torch.no_grad():
            output = model(
                input_ids=as_torch["input_ids"], attention_mask=as_torch["input_mask"],
                token_type_ids=as_torch["segment_ids"],
            )
        instances += int(as_torch["input_ids"].shape[0])
        # BertForPreTraining calls the masked-LM scores prediction_logits, the masked-LM models logits.
        logits = output.prediction_logits if with_next_sentence else output.logits
        positions = as_torch["masked_lm_positions"]
        gathered = torch.gather(logits, 1, positions[:, :, None].expand(-1, -1, logits.shape[-1]))
        # float64 sums: exact enough over any number of batches.
        log_probs = torch.log_softmax(gathered.double(), dim=-1)
        labels = as_torch["masked_lm_ids"]
        weights = torch.from_numpy(features["masked_lm_weights"].numpy().astype(np.float64))
        picked = torch.gather(log_probs, 2, labels[:, :, None])[:, :, 0]
        totals["mlm_loss_sum"] += float(-(picked * weights).sum())
        totals["mlm_correct_sum"] += float(((log_probs.argmax(-1) == labels).double() * weights).sum())
        totals["mlm_weight_sum"] += float(weights.sum())
        if with_next_sentence:
            nsp_log_probs = torch.log_softmax(output.seq_relationship_logits.double(), dim=-1)
            nsp_labels = as_torch["next_sentence_labels"].reshape(-1)
            totals["nsp_loss_sum"] += float(-torch.gather(nsp_log_probs, 1, nsp_labels[:, None]).sum())
            totals["nsp_correct_sum"] += float((nsp_log_probs.argmax(-1) == nsp_labels).double().sum())
            totals["nsp_example_count"] += float(nsp_labels.shape[0])
    if not instances:
        raise ValueError(f"{records_file}: no records to evaluate on")
    return {"instances": instances, **heldout_means(totals, next_sentence=with_next_sentence)}
