"""Continuing pretraining from a released BERT (the config key init_from).

The sources are made here, never downloaded: one by Transformers itself from
a BertConfig with random weights, one by this project's own export (Google's
release layout in tf/, Transformers' in hf/).
"""

import json
import math
import os
import shutil

import numpy as np
import pytest

from bert_pretraining.bert_config import BertConfig, hf_name, variable_shapes
from bert_pretraining.errors import ConfigError
from bert_pretraining.run_layout import RunLayout
from bert_pretraining.settings import init_from_report, load_settings
from bert_pretraining.source_model import GOOGLE, TRANSFORMERS, check_weights, inspect_source, read_weights
from bert_pretraining.tokenization import read_vocabulary, train_vocabulary
from workflow_helpers import REPO, fresh_clone, load_yaml, snakemake, write_yaml

CORPUS = os.path.join(REPO, "demo/corpus/python-docs-1.txt")
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, max_position_embeddings=128)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vocab")
    corpus = directory / "corpus.txt"
    corpus.write_text(open(CORPUS, encoding="utf-8").read()[:200_000], encoding="utf-8")
    return train_vocabulary([str(corpus)], str(directory / "vocab.txt"), 1000, False, 2)


@pytest.fixture(scope="module")
def transformers():
    pytest.importorskip("torch")
    os.environ["HF_HUB_OFFLINE"] = "1"
    return pytest.importorskip("transformers")


def transformers_source(directory, tokens, transformers, *, model="BertForPreTraining", hidden_act="gelu_new"):
    """A random BERT written by Transformers' save_pretrained, with a vocab.txt."""
    config = transformers.BertConfig(vocab_size=len(tokens), hidden_act=hidden_act, **TINY)
    getattr(transformers, model)(config).save_pretrained(str(directory))
    (directory / "vocab.txt").write_text("".join(token + "\n" for token in tokens), encoding="utf-8")
    return directory


def google_source(directory, tokens, *, hidden_act="gelu_tanh", use_nsp=True, seed=0, shapes=None):
    """Google's release layout as the export's tf/ writes it, with random weights."""
    from bert_pretraining.export import write_tf_release

    config = BertConfig(vocab_size=len(tokens), hidden_act=hidden_act, **TINY)
    rng = np.random.default_rng(seed)
    tensors = {
        name: rng.normal(0, 0.02, (shapes or {}).get(name, shape)).astype(np.float32)
        for name, (_, shape) in variable_shapes(config, use_nsp).items()
    }
    write_tf_release(str(directory), tensors, config, list(tokens))
    return tensors


def user_config(tmp_path, monkeypatch, **sections):
    """A config file naming only what it changes, loaded from the repository as snakemake would."""
    monkeypatch.chdir(REPO)
    path = write_yaml(str(tmp_path / "mine.yaml"), sections)
    return load_settings([path])


# --------------------------------------------------------------------------
# Reading the two layouts
# --------------------------------------------------------------------------


def test_a_transformers_directory_gives_its_architecture_vocabulary_and_weights(tmp_path, tokens, transformers):
    import torch

    directory = transformers_source(tmp_path / "hf", tokens, transformers)
    source = inspect_source(str(directory))
    assert source.layout == TRANSFORMERS and source.weights.endswith("model.safetensors")
    assert source.config.hidden_act == "gelu_tanh" and source.hidden_act_as_written == "gelu_new"
    assert (source.config.hidden_size, source.config.num_hidden_layers, source.config.vocab_size) == (64, 2, len(tokens))
    assert list(source.tokens) == tokens and source.do_lower_case is False
    assert check_weights(source, use_next_sentence_prediction=True) == []

    weights = read_weights(source, use_next_sentence_prediction=True)
    assert sorted(weights) == sorted(variable_shapes(source.config, True))
    state = transformers.BertForPreTraining.from_pretrained(str(directory)).state_dict()
    for name, value in weights.items():
        key, transpose = hf_name(name)
        expected = state[key].to(torch.float32).numpy()
        np.testing.assert_array_equal(value, expected.T if transpose else expected)


@pytest.mark.parametrize("hf_act, ours", [("gelu", "gelu"), ("gelu_new", "gelu_tanh"), ("gelu_pytorch_tanh", "gelu_tanh")])
def test_transformers_activation_names_map_to_the_same_function(tmp_path, tokens, transformers, hf_act, ours):
    directory = transformers_source(tmp_path / "hf", tokens, transformers, hidden_act=hf_act)
    assert inspect_source(str(directory)).config.hidden_act == ours


def test_google_layout_gelu_is_the_tanh_approximation_and_weights_round_trip(tmp_path, tokens):
    tensors = google_source(tmp_path / "tf", tokens, hidden_act="gelu_tanh")
    written = json.loads((tmp_path / "tf" / "bert_config.json").read_text())
    assert written["hidden_act"] == "gelu"  # Google's name for the tanh form
    source = inspect_source(str(tmp_path / "tf"))
    assert source.layout == GOOGLE and source.config.hidden_act == "gelu_tanh"
    weights = read_weights(source, use_next_sentence_prediction=True)
    assert sorted(weights) == sorted(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(weights[name], value)


def test_tokenizer_json_alone_gives_the_vocabulary_and_its_casing(tmp_path, tokens, transformers):
    from bert_pretraining.export import hf_tokenizer_json

    directory = transformers_source(tmp_path / "hf", tokens, transformers)
    os.remove(directory / "vocab.txt")
    (directory / "tokenizer.json").write_text(hf_tokenizer_json(tokens, do_lower_case=True), encoding="utf-8")
    source = inspect_source(str(directory))
    assert list(source.tokens) == tokens and source.vocabulary_file.endswith("tokenizer.json")
    assert source.do_lower_case is True and "tokenizer.json" in source.casing_from


def test_a_bare_bert_model_gets_fresh_heads(tmp_path, tokens, transformers):
    directory = transformers_source(tmp_path / "hf", tokens, transformers, model="BertModel")
    source = inspect_source(str(directory))
    assert check_weights(source, use_next_sentence_prediction=False) == ["masked-LM head"]
    weights = read_weights(source, use_next_sentence_prediction=False)
    assert not any(name.startswith("cls/") for name in weights) and "bert/encoder/layer_1/output/dense/kernel" in weights


# --------------------------------------------------------------------------
# The run's settings
# --------------------------------------------------------------------------


def test_the_run_takes_the_source_architecture_and_vocabulary_and_names_what_it_overrides(
    tmp_path, monkeypatch, tokens, transformers
):
    directory = transformers_source(tmp_path / "hf", tokens, transformers)
    settings = user_config(
        tmp_path, monkeypatch, init_from=str(directory),
        model={"hidden_dropout_prob": 0.05}, phases=[load_yaml(os.path.join(REPO, "config.yaml"))["phases"][0]],
    )
    assert settings.init_from.directory == str(directory)
    assert (settings.model.hidden_size, settings.model.intermediate_size, settings.model.max_position_embeddings) == (
        64, 128, 128,
    )
    assert settings.model.hidden_act == "gelu_tanh" and settings.model.hidden_dropout_prob == 0.05
    assert settings.vocabulary.size == len(tokens) and settings.vocabulary.do_lower_case is False
    overridden = {key: (old, new) for key, old, new in settings.overridden}
    assert overridden["model.hidden_size"] == (768, 64) and overridden["vocabulary.size"] == (50000, len(tokens))
    assert "model.hidden_dropout_prob" not in overridden and "model.type_vocab_size" not in overridden
    report = init_from_report(settings)
    assert report[0].startswith(f"continues from {directory} (a Transformers BERT directory): 2 layers, hidden 64")
    assert "model.hidden_size is 64 from the source (the config says 768)" in report


PHASE_128 = {"max_seq_length": 128, "max_predictions_per_seq": 20, "batch_size_per_gpu": 8, "first_step": 0,
             "last_step": 10, "segment_steps": 10}


def refusal(tmp_path, monkeypatch, tokens, transformers, case):
    """Make the source of one refusal case; return the settings' error (or the weight check's)."""
    source = tmp_path / "source"
    sections = {"phases": [PHASE_128]}
    if case == "neither layout":
        source.mkdir()
        (source / "vocab.txt").write_text("[PAD]\n", encoding="utf-8")
    elif case == "vocabulary size":
        transformers_source(source, tokens, transformers)
        with open(source / "vocab.txt", "a", encoding="utf-8") as handle:
            handle.write("extra-token\n")
    elif case == "weights that do not fit their config":
        google_source(source, tokens, shapes={"bert/encoder/layer_1/intermediate/dense/kernel": [64, 256]})
    elif case == "masked-LM head of another vocabulary":
        google_source(source, tokens, shapes={"cls/predictions/output_bias": [len(tokens) + 5]})
    elif case == "no next-sentence head":
        transformers_source(source, tokens, transformers, model="BertForMaskedLM")
    elif case == "positions":
        transformers_source(source, tokens, transformers)
        sections["phases"] = [PHASE_128, {**PHASE_128, "max_seq_length": 512, "max_predictions_per_seq": 80,
                                          "first_step": 10, "last_step": 20}]
    elif case == "vocabulary.file too":
        transformers_source(source, tokens, transformers)
        sections["vocabulary"] = {"file": str(source / "vocab.txt")}
    elif case == "unknown activation":
        transformers_source(source, tokens, transformers, hidden_act="silu")
    with pytest.raises(ConfigError) as raised:
        init_from_report(user_config(tmp_path, monkeypatch, init_from=str(source), **sections))
    return str(raised.value)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("neither layout", "is neither layout: expected Google's (bert_config.json"),
        ("vocabulary size", "vocab.txt has 1,001 tokens but {source}/config.json says vocab_size 1,000"),
        ("weights that do not fit their config",
         "bert/encoder/layer_1/intermediate/dense/kernel in {source}/bert_model.ckpt has shape [64, 256] but "
         "{source}/bert_config.json implies [64, 128]"),
        ("masked-LM head of another vocabulary",
         "cls/predictions/output_bias in {source}/bert_model.ckpt has shape [1005] but {source}/bert_config.json "
         "implies [1000] (vocab_size 1000"),
        ("no next-sentence head",
         "has no next-sentence head (cls/seq_relationship/output_weights) while model.use_next_sentence_prediction"),
        ("positions", "phases[1].max_seq_length is 512; expected at most model.max_position_embeddings (128, the "
         "positions of init_from {source})"),
        ("vocabulary.file too", "expected one of them (a continued model keeps its own vocabulary)"),
        ("unknown activation", "hidden_act 'silu' is not an activation this project computes"),
    ],
)
def test_a_source_that_cannot_be_continued_is_refused_with_both_values(
    tmp_path, monkeypatch, tokens, transformers, case, expected
):
    message = refusal(tmp_path, monkeypatch, tokens, transformers, case)
    assert expected.format(source=tmp_path / "source") in message, message


# --------------------------------------------------------------------------
# The workflow, end to end (slow): Snakemake runs on a fresh clone
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    workdir = fresh_clone(str(tmp_path_factory.mktemp("init-from-clone")))
    corpus = os.path.join(workdir, "small-corpus")
    os.makedirs(corpus)
    text = open(CORPUS, encoding="utf-8").read()[:300_000].rsplit("\n\n", 1)[0] + "\n"
    with open(os.path.join(corpus, "part.txt"), "w", encoding="utf-8") as handle:
        handle.write(text)
    return workdir


def run_workflow(workdir, name, *, steps, learning_rate, init_from=None):
    """A one-phase run on the small corpus; returns its results directory's layout."""
    config = load_yaml(os.path.join(workdir, "demo/config.yaml"))
    config.update(run_name=name, init_from=init_from)
    config["corpus"].update(files=["small-corpus/*.txt"], num_shards=2, heldout_fraction=0.05)
    config["vocabulary"].update(size=1000)
    config["model"].update(hidden_size=64, intermediate_size=128, max_position_embeddings=128)
    config["training"].update(learning_rate=learning_rate, use_xla=False, save_checkpoints_steps=steps, log_every_steps=5)
    config["phases"] = [{**PHASE_128, "batch_size_per_gpu": 16, "last_step": steps, "segment_steps": steps,
                         "num_warmup_steps": 0}]
    write_yaml(os.path.join(workdir, f"{name}.yaml"), config)
    result = snakemake(workdir, "--configfile", f"{name}.yaml", "--cores", "2", timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return RunLayout(os.path.join(workdir, "results", name)), result


@pytest.fixture(scope="module")
def trained_source(clone):
    """This project's own export of a briefly trained model: tf/ is Google's layout, hf/ Transformers'."""
    run, _ = run_workflow(clone, "source", steps=60, learning_rate=2e-3)
    return run.export_dir


def exported_weights(export_dir):
    from safetensors.numpy import load_file

    return load_file(os.path.join(export_dir, "hf", "model.safetensors"))


@pytest.mark.slow
@pytest.mark.snakemake
def test_at_a_learning_rate_of_about_zero_the_export_is_the_transformers_source(clone, tokens, transformers, tmp_path):
    source = transformers_source(tmp_path / "random-hf", tokens, transformers)
    run, result = run_workflow(clone, "continue-hf-zero", steps=4, learning_rate=1e-12, init_from=str(source))
    assert f"init_from: continues from {source}" in result.stderr
    export_dir = run.export_dir
    from safetensors.numpy import load_file

    ours, theirs = exported_weights(export_dir), load_file(str(source / "model.safetensors"))
    for key, value in ours.items():
        np.testing.assert_allclose(value, theirs[key], atol=1e-6, err_msg=key)
    assert read_vocabulary(os.path.join(export_dir, "hf", "vocab.txt")) == tokens
    hf_config = json.load(open(os.path.join(export_dir, "hf", "config.json")))
    assert hf_config["hidden_act"] == "gelu_new" and hf_config["hidden_size"] == 64
    card = open(os.path.join(export_dir, "README.md"), encoding="utf-8").read()
    assert f"Initialised from `{source}`" in card
    log = open(run.log("pretrain", phase="phase128", step=4), encoding="utf-8").read()
    assert f"initialised from the weights of {source}" in log


@pytest.mark.slow
@pytest.mark.snakemake
def test_at_a_learning_rate_of_about_zero_a_google_gelu_source_stays_tanh_and_unchanged(clone, trained_source):
    source = os.path.join(trained_source, "tf")
    assert json.load(open(os.path.join(source, "bert_config.json")))["hidden_act"] == "gelu"
    run, _ = run_workflow(clone, "continue-tf-zero", steps=4, learning_rate=1e-12, init_from=source)
    export_dir = run.export_dir
    ours, theirs = exported_weights(export_dir), exported_weights(trained_source)
    assert sorted(ours) == sorted(theirs)
    for key, value in ours.items():
        np.testing.assert_allclose(value, theirs[key], atol=1e-6, err_msg=key)
    assert open(os.path.join(export_dir, "tf", "vocab.txt")).read() == open(os.path.join(source, "vocab.txt")).read()
    assert json.load(open(run.bert_config))["hidden_act"] == "gelu_tanh"
    assert json.load(open(os.path.join(export_dir, "tf", "bert_config.json")))["hidden_act"] == "gelu"
    assert json.load(open(os.path.join(export_dir, "hf", "config.json")))["hidden_act"] == "gelu_new"


@pytest.mark.slow
@pytest.mark.snakemake
@pytest.mark.parametrize("layout", ["tf", "hf"])
def test_continuing_at_a_normal_learning_rate_keeps_what_the_source_learned(clone, trained_source, transformers, layout):
    from bert_pretraining.transformers_evaluation import transformers_heldout_metrics

    run, _ = run_workflow(clone, f"continue-{layout}", steps=10, learning_rate=1e-4,
                          init_from=os.path.join(trained_source, layout))
    heldout = run.records_file(128, "heldout")
    source = transformers_heldout_metrics(
        os.path.join(trained_source, "hf"), heldout, max_seq_length=128, max_predictions_per_seq=20
    )
    ours = json.load(open(run.eval_json("phase128")))
    random_loss = math.log(1000)
    assert source["masked_lm_loss"] < random_loss - 0.5, source  # the source learned something
    assert ours["masked_lm_loss"] <= source["masked_lm_loss"] + 0.05, (ours, source)
    shutil.rmtree(run.phase_dir("phase128"))  # keep the module's disk use small


@pytest.mark.slow
@pytest.mark.snakemake
@pytest.mark.parametrize("profile", [False, True], ids=["local", "profile"])
def test_snakemake_plans_a_continued_run_and_refuses_a_source_it_cannot_continue(tmp_path, tokens, transformers, profile):
    from test_config_validation import DEMO, PROFILE, assert_refused, dry_run, fits_the_profile

    config = fits_the_profile(DEMO) if profile else dict(DEMO)
    config = {**config, "phases": DEMO["phases"][:1]}  # the source has 128 positions
    args = ["--profile", PROFILE] if profile else []
    good = transformers_source(tmp_path / "good", tokens, transformers)
    returncode, output = dry_run(tmp_path, {**config, "init_from": str(good)}, *args)
    assert returncode == 0, output
    assert f"init_from: continues from {good} (a Transformers BERT directory): 2 layers, hidden 64" in output
    assert "init_from: model.hidden_size is 64 from the source (the config says 128)" in output
    masked_lm_only = transformers_source(tmp_path / "mlm", tokens, transformers, model="BertForMaskedLM")
    assert_refused(
        *dry_run(tmp_path, {**config, "init_from": str(masked_lm_only)}, *args),
        f"invalid configuration: init_from: {masked_lm_only}/model.safetensors has no next-sentence head",
    )
