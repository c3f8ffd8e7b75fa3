"""The disk estimate counts exactly the model's parameters."""


import numpy as np
import pytest

from bert_pretraining.bert_config import parameter_count
from bert_pretraining.disk import estimate_disk
from bert_pretraining.settings import ModelSettings, load_settings
from workflow_helpers import REPO


@pytest.mark.parametrize("nsp", [True, False])
def test_parameter_count_matches_the_model(nsp):
    from bert_pretraining.modeling import BertConfig, BertPretrainer

    model = ModelSettings(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, hidden_act="gelu",
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=64, type_vocab_size=2,
        initializer_range=0.02, use_next_sentence_prediction=nsp,
    )
    bert = BertPretrainer(BertConfig(vocab_size=99, **model.bert_config()), use_next_sentence_prediction=nsp)
    variables = bert.variables_by_name
    actual = sum(int(np.prod(v.shape)) for v in variables.values())
    config = BertConfig(vocab_size=99, **model.bert_config())
    assert parameter_count(config, nsp) == actual
    # The Transformers export leaves out the pooler only when nothing trained it.
    pooler = sum(int(np.prod(v.shape)) for name, v in variables.items() if name.startswith("bert/pooler/"))
    assert pooler == 32 * 32 + 32
    assert parameter_count(config, nsp, untrained_pooler=False) == actual - (0 if nsp else pooler)


def test_production_estimate(monkeypatch):
    monkeypatch.chdir(REPO)
    estimate = estimate_disk(load_settings())
    assert 120e6 < estimate["parameters"] < 130e6  # BERT-base with a 50,000 vocabulary
    assert estimate["checkpoints_kept"] == 2 * 5 + 3 * 2  # each segment end twice: published and its copy
    assert estimate["total_bytes"] > estimate["checkpoints_total_bytes"]
