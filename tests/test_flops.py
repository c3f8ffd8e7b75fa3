"""The FLOP count and MFU."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bert_pretraining.flops import PEAK_ENV, flops_per_sequence, peak_tflops, utilisation

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


def test_peaks(monkeypatch):
    monkeypatch.delenv(PEAK_ENV, raising=False)
    assert peak_tflops("Tesla V100-SXM2-32GB", "fp16") == 125.0
    assert peak_tflops("NVIDIA A100-SXM4-40GB", "bf16") == 312.0
    assert peak_tflops(None, "fp32") is None
    monkeypatch.setenv(PEAK_ENV, "2.5")
    assert peak_tflops(None, "fp32") == 2.5


def test_utilisation():
    achieved, mfu = utilisation(1e12, 2.0, devices=8, peak=125.0)
    assert achieved == 2.0 and mfu == pytest.approx(2.0 / 1000)
    assert utilisation(1e12, 2.0, 8, None)[1] is None
