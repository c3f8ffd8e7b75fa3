"""Transformers as the independent judge: a model directory's masked-LM loss and accuracy on our records."""

import numpy as np


def transformers_heldout_metrics(model_dir, records_file, *, max_seq_length, max_predictions_per_seq, batch_size=32):
    """Masked-LM loss and accuracy of a Transformers BERT directory on a record file.

    Weighted over the real predictions (masked_lm_weights 1), as our
    evaluation computes them; the records are read with our input pipeline,
    the model is run by Transformers in PyTorch.
    """
    import torch
    from transformers import AutoModelForMaskedLM

    from bert_pretraining.inputs import evaluation_dataset

    model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
    loss_sum = correct = weight_sum = 0.0
    for features in evaluation_dataset(
        [records_file], batch_size=batch_size, max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq
    ):
        as_torch = {name: torch.from_numpy(value.numpy().astype(np.int64)) for name, value in features.items()
                    if name != "masked_lm_weights"}
        with torch.no_grad():
            logits = model(
                input_ids=as_torch["input_ids"], attention_mask=as_torch["input_mask"],
                token_type_ids=as_torch["segment_ids"],
            ).logits
        positions = as_torch["masked_lm_positions"]
        gathered = torch.gather(logits, 1, positions[:, :, None].expand(-1, -1, logits.shape[-1]))
        log_probs = torch.log_softmax(gathered.double(), dim=-1)
        labels = as_torch["masked_lm_ids"]
        weights = torch.from_numpy(features["masked_lm_weights"].numpy().astype(np.float64))
        picked = torch.gather(log_probs, 2, labels[:, :, None])[:, :, 0]
        loss_sum += float(-(picked * weights).sum())
        correct += float(((log_probs.argmax(-1) == labels).double() * weights).sum())
        weight_sum += float(weights.sum())
    return {"masked_lm_loss": loss_sum / weight_sum, "masked_lm_accuracy": correct / weight_sum}
