"""The disk estimate counts exactly the model's parameters."""

import os

import numpy as np
import pytest

from bert_pretraining.disk import estimate_disk, parameter_count
from workflow_helpers import REPO, load_yaml


@pytest.mark.parametrize("nsp", [True, False])
def test_parameter_count_matches_the_model(nsp):
    from bert_pretraining.modeling import BertConfig, BertPretrainer

    model = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=64, type_vocab_size=2)
    bert = BertPretrainer(BertConfig(vocab_size=99, **model), use_next_sentence_prediction=nsp)
    actual = sum(int(np.prod(v.shape)) for v in bert.variables_by_name.values())
    assert parameter_count(model, 99, nsp) == actual


def test_production_estimate(monkeypatch):
    monkeypatch.chdir(REPO)
    estimate = estimate_disk(load_yaml(os.path.join(REPO, "config.yaml")))
    assert 120e6 < estimate["parameters"] < 130e6  # BERT-base with a 50,000 vocabulary
    assert estimate["checkpoints_kept"] == 5 + 3 * 2
    assert estimate["total_bytes"] > estimate["checkpoints_total_bytes"]
