"""Model FLOPs of a BERT pretraining step, and utilisation against the device's peak.

The count is the standard one (Kaplan et al.; Narayanan et al.): a training
step costs 3 x the forward FLOPs (forward + backward), and the forward pass
costs 2 FLOPs per multiply-add. Per sequence of length s, with hidden size H,
intermediate size I, L layers, vocabulary V and p predicted positions:

- encoder matmuls: 6 * s * L * (4 H^2 + 2 H I)       (Q, K, V, output; two FFN layers)
- attention:       6 * L * 2 * s^2 * H              (scores QK^T and the weighted sum AV)
- masked-LM head:  6 * p * (H^2 + H V)              (only at the predicted positions)
- pooler + NSP:    6 * (H^2 + 2 H)

Embedding lookups, layer norms, softmax and biases are left out, as usual.
MFU = achieved model FLOP/s / (devices x peak FLOP/s of one device).
"""

from __future__ import annotations

import os

# Dense peak TFLOP/s of one device (what one rank trains on) for the precisions training uses,
# from the vendors' data sheets: NVIDIA V100 SXM2, A100 SXM4, H100 SXM5 (the GPU of a GH200
# superchip has the same figures), AMD MI250X per GCD (the package's 383 TFLOP/s fp16/bf16 and
# 95.7 fp32 matrix, halved: ROCm shows each of its two dies as a GPU and SLURM gives one per rank).
# fp32 is the plain fp32 figure (matrix cores on the MI250X), not TF32. Keys are matched in this
# order against the name TensorFlow reports, so "GH200" comes before "H200" and "H100".
PEAK_TFLOPS = {
    "V100": {"fp16": 125.0, "bf16": None, "fp32": 15.7},
    "A100": {"fp16": 312.0, "bf16": 312.0, "fp32": 19.5},
    "GH200": {"fp16": 989.0, "bf16": 989.0, "fp32": 67.0},
    "H100": {"fp16": 989.0, "bf16": 989.0, "fp32": 67.0},
    "MI250": {"fp16": 191.5, "bf16": 191.5, "fp32": 47.9},
}
PEAK_ENV = "BERT_PEAK_TFLOPS"  # overrides the table: peak TFLOP/s of one device


def flops_per_sequence(
    *, hidden_size: int, intermediate_size: int, num_hidden_layers: int, vocab_size: int,
    seq_length: int, predictions: int, next_sentence: bool = True,
) -> float:
    h, i, layers, s = hidden_size, intermediate_size, num_hidden_layers, seq_length
    encoder = 6 * s * layers * (4 * h * h + 2 * h * i)
    attention = 6 * layers * 2 * s * s * h
    masked_lm = 6 * predictions * (h * h + h * vocab_size)
    nsp = 6 * (h * h + 2 * h) if next_sentence else 0
    return float(encoder + attention + masked_lm + nsp)


def device_peak(device_name: str | None, precision: str) -> tuple[float | None, str]:
    """Peak TFLOP/s of one device and where it comes from, for the training log.

    $BERT_PEAK_TFLOPS wins; else the table by device name; else None (no MFU)
    with the reason.
    """
    override = os.environ.get(PEAK_ENV)
    if override:
        return float(override), f"${PEAK_ENV}"
    if not device_name:
        return None, f"no GPU; set ${PEAK_ENV} for an MFU"
    for model, peaks in PEAK_TFLOPS.items():
        if model in device_name.upper():
            peak = peaks.get(precision)
            if peak is None:
                return None, f"{model} has no {precision} peak in flops.PEAK_TFLOPS"
            return peak, f"{model} {precision} in flops.PEAK_TFLOPS"
    return None, f"not in flops.PEAK_TFLOPS; set ${PEAK_ENV} for an MFU"


def utilisation(flops_per_step: float, steps_per_second: float, devices: int, peak: float | None):
    """(achieved TFLOP/s over all devices, MFU or None when the peak is unknown)."""
    achieved = flops_per_step * steps_per_second / 1e12
    if not peak:
        return achieved, None
    return achieved, achieved / (devices * peak)
