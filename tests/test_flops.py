"""The FLOP count and MFU."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bert_pretraining.flops import PEAK_ENV, device_peak, flops_per_sequence, utilisation

BASE = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, vocab_size=50000)


def test_bert_base_at_128_is_about_six_times_parameters_times_tokens():
    flops = flops_per_sequence(**BASE, seq_length=128, predictions=20)
    encoder_parameters = 12 * (4 * 768**2 + 2 * 768 * 3072)  # 85 M
    assert flops > 6 * encoder_parameters * 128
    assert flops == pytest.approx(6 * encoder_parameters * 128 * 1.10, rel=0.02)  # + 3% attention, 9% MLM head


@given(st.integers(8, 512), st.integers(1, 80))
def test_flops_grow_with_length_and_predictions(seq, predictions):
    a = flops_per_sequence(**BASE, seq_length=seq, predictions=predictions)
    assert flops_per_sequence(**BASE, seq_length=seq + 1, predictions=predictions) > a
    assert flops_per_sequence(**BASE, seq_length=seq, predictions=predictions + 1) > a


# The names TensorFlow reports for each GPU of the table (tf.config.experimental.get_device_details).
@pytest.mark.parametrize("name, precision, peak", [
    ("Tesla V100-SXM2-32GB", "fp16", 125.0),
    ("NVIDIA A100-SXM4-40GB", "bf16", 312.0),
    ("NVIDIA H100 80GB HBM3", "bf16", 989.0),
    ("NVIDIA GH200 480GB", "bf16", 989.0),
    ("NVIDIA GH200 480GB", "fp32", 67.0),
    ("AMD Instinct MI250X", "bf16", 191.5),
    ("AMD Instinct MI250X", "fp32", 47.9),
])
def test_peaks_of_the_clusters_gpus(monkeypatch, name, precision, peak):
    monkeypatch.delenv(PEAK_ENV, raising=False)
    assert device_peak(name, precision)[0] == peak


def test_no_peak_says_why_and_the_environment_wins(monkeypatch):
    monkeypatch.delenv(PEAK_ENV, raising=False)
    assert device_peak(None, "fp32") == (None, f"no GPU; set ${PEAK_ENV} for an MFU")
    assert device_peak("Tesla V100-SXM2-32GB", "bf16") == (None, "V100 has no bf16 peak in flops.PEAK_TFLOPS")
    assert device_peak("Radeon VII", "fp16")[0] is None and PEAK_ENV in device_peak("Radeon VII", "fp16")[1]
    assert device_peak("NVIDIA GH200 480GB", "bf16")[1] == "GH200 bf16 in flops.PEAK_TFLOPS"
    monkeypatch.setenv(PEAK_ENV, "2.5")
    assert device_peak(None, "fp32") == (2.5, f"${PEAK_ENV}")


def test_utilisation():
    achieved, mfu = utilisation(1e12, 2.0, devices=8, peak=125.0)
    assert achieved == 2.0 and mfu == pytest.approx(2.0 / 1000)
    assert utilisation(1e12, 2.0, 8, None)[1] is None
