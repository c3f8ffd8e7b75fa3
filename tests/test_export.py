"""The final export: tf/ (Google's release layout), hf/ (Transformers), the model card, refusals.

Checkpoints here mimic training checkpoints: every model variable with random,
non-trivial values (LayerNorm gammas not 1, biases not 0, so a swapped or
untransposed tensor shows in the logits), plus Adam slots, global_step, loss
scale and input state, which the export must leave out.
"""

import dataclasses
import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("safetensors")

from bert_pretraining import checkpoints, export  # noqa: E402
from bert_pretraining.errors import CheckpointError, WorkflowError  # noqa: E402
from bert_pretraining.evaluation import load_model  # noqa: E402
from bert_pretraining.files import file_sha256  # noqa: E402
from bert_pretraining.modeling import BertConfig, BertPretrainer  # noqa: E402
from bert_pretraining.run_inputs import bert_config_digest  # noqa: E402
from bert_pretraining.tokenization import load_tokenizer, train_vocabulary  # noqa: E402
from synthetic_corpus import write_random_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "workflow" / "scripts" / "export_model.py"
SEQ, PREDICTIONS = 24, 4
TOLERANCE = 1e-4

SENTENCES = [
    "The Company reported quarterly earnings and revenue growth.",
    "Nokia and Fortum shares rose 3.5 % after the central bank kept interest rates unchanged!",
    "Osakkeet nousivat Helsingin pörssissä; Äänekoski ja Öljy-yhtiö raportoivat tuloksensa.",
    "Le café était fermé, mais l'hôtel à Montréal restait ouvert (naïve façade).",
    "Ein Übermaß an Ärger über Straßen: GROSSE Buchstaben, kleine Wörter.",
    "中文字符 and 日本語 mixed with ASCII text, numbers 12,345.67 and e-mail@example.com",
    "Unaffable unbelievably unbelievable re-examination co-operation, don't won't can't.",
]


def write_corpus(path, seed=0):
    words = " ".join(SENTENCES).split()
    return str(write_random_corpus(path, words, num_documents=60, seed=seed, sentences=(1, 4), words_per_sentence=(4, 14)))


def make_checkpoint(directory, *, do_lower_case, use_nsp, hidden_act, seed):
    """A vocabulary trained on a small corpus, a bert_config.json and a training-like checkpoint."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_path = str(directory / "vocab.txt")
    tokens = train_vocabulary(
        [write_corpus(directory / "corpus.txt", seed)], vocab_path, vocab_size=400, min_frequency=1,
        do_lower_case=do_lower_case,
    )
    config = BertConfig(
        vocab_size=len(tokens), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=40, hidden_act=hidden_act,
    )
    config_path = str(directory / "bert_config.json")
    config.to_json_file(config_path)
    model = BertPretrainer(config, use_next_sentence_prediction=use_nsp, seed=seed)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, variable in model.variables_by_name.items():
        noise = rng.normal(0.0, 0.2, variable.shape).astype(np.float32)
        variable.assign(noise + 1.0 if name.endswith("/gamma") else noise)
        tensors[name] = variable
        tensors[f"{name}/adam_m"] = tf.constant(rng.normal(size=variable.shape).astype(np.float32))
        tensors[f"{name}/adam_v"] = tf.constant(rng.random(variable.shape).astype(np.float32))
    tensors.update(
        global_step=tf.constant(1234, tf.int64),
        loss_scale=tf.constant(32768.0),
        input_position=tf.constant(99, tf.int64),
        skipped_steps=tf.constant(2, tf.int64),
    )
    trained_on = {"vocab_sha256": file_sha256(vocab_path), "bert_config_sha256": bert_config_digest(config_path)}
    ref = checkpoints.save_checkpoint(str(directory / "phase128"), 1234, tensors, inputs=trained_on)
    return {"prefix": ref.prefix, "config": config_path, "vocab": vocab_path, "bert_config": config}


def batch(vocab_size, seed=0):
    """Two segments, padding at the end of some rows, masked positions in the real tokens."""
    rng = np.random.default_rng(seed)
    size = 3
    input_ids = rng.integers(5, vocab_size, (size, SEQ)).astype(np.int32)
    input_mask = np.ones((size, SEQ), np.int32)
    input_mask[1, 17:] = 0
    input_mask[2, 10:] = 0
    input_ids[input_mask == 0] = 0
    input_ids[:, 0] = 2
    segment_ids = np.zeros((size, SEQ), np.int32)
    segment_ids[:, 6:] = 1
    segment_ids[input_mask == 0] = 0
    positions = np.stack([np.sort(rng.choice(np.arange(1, 9), PREDICTIONS, replace=False)) for _ in range(size)])
    return input_ids, input_mask, segment_ids, positions.astype(np.int32)


def our_logits(prefix, config, use_nsp, features):
    model = load_model(prefix, config, use_nsp)
    mlm, nsp = model(*features, training=False)
    return mlm.numpy(), None if nsp is None else nsp.numpy()


@pytest.fixture(scope="module")
def nsp_export(tmp_path_factory):
    """A cased NSP model (exact GELU), exported with eval results and a records sidecar."""
    root = tmp_path_factory.mktemp("nsp")
    source = make_checkpoint(root / "run", do_lower_case=False, use_nsp=True, hidden_act="gelu", seed=1)
    evals = []
    for phase, step, accuracy in (("phase128", 1000, 0.4321), ("phase512", 1234, 0.5678)):
        path = root / "run" / phase / "eval.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({
            "checkpoint": f"results/x/{phase}/model.ckpt-{step}", "step": step, "instances": 321,
            "masked_lm_accuracy": accuracy, "masked_lm_loss": 2.5, "next_sentence_accuracy": 0.91,
            "next_sentence_loss": 0.25, "loss": 2.75, "masked_lm_baseline_accuracy": 0.0625,
            "masked_lm_baseline_token": "the",
        }))
        evals.append(str(path))
    sidecar = root / "records.json"
    sidecar.write_text(json.dumps({
        "num_instances": 98765, "max_seq_length": 128, "max_predictions_per_seq": 20, "dupe_factor": 5,
        "masked_lm_prob": 0.15, "do_whole_word_mask": False, "do_lower_case": False, "heldout": {"file": "h", "num_instances": 432},
        "num_documents": 5555, "num_tokens": 7654321,
    }))
    phases = [
        {"name": "phase128", "max_seq_length": 128, "max_predictions_per_seq": 20, "first_step": 0,
         "last_step": 1000, "batch_size_per_gpu": 140},
        {"name": "phase512", "max_seq_length": 512, "max_predictions_per_seq": 80, "first_step": 1000,
         "last_step": 1234, "batch_size_per_gpu": 20},
    ]
    output = root / "run" / "export"
    summary = export.export_model(
        source["prefix"] + ".index", source["config"], source["vocab"], str(output),  # casing from the sidecar
        eval_files=evals, records_sidecars=[str(sidecar)], phases=phases,
    )
    return source, output, summary


@pytest.fixture(scope="module")
def mlm_only_export(tmp_path_factory):
    """An uncased model without NSP (tanh GELU), exported with the NSP setting taken from the checkpoint."""
    root = tmp_path_factory.mktemp("mlm")
    source = make_checkpoint(root, do_lower_case=True, use_nsp=False, hidden_act="gelu_new", seed=2)
    output = root / "export"
    summary = export.export_model(source["prefix"], source["config"], source["vocab"], str(output), do_lower_case=True)
    return source, output, summary


# --------------------------------------------------------------------------
# tf/: Google's release layout
# --------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["nsp_export", "mlm_only_export"])
def test_tf_release_holds_only_the_model_variables_and_gives_the_same_logits(which, request):
    source, output, summary = request.getfixturevalue(which)
    use_nsp = which == "nsp_export"
    assert summary["use_next_sentence_prediction"] is use_nsp
    assert sorted(os.listdir(output / "tf")) == [
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index", "vocab.txt",
    ]
    prefix = str(output / "tf" / "bert_model.ckpt")
    expected = BertPretrainer(source["bert_config"], use_next_sentence_prediction=use_nsp).variables_by_name
    written = dict(tf.train.list_variables(prefix))
    assert sorted(written) == sorted(expected)  # no adam slots, global_step, loss_scale, input state
    assert all(tuple(written[name]) == tuple(variable.shape) for name, variable in expected.items())
    assert not any("adam" in name or "step" in name for name in written)

    # tf/bert_config.json spells the activation as Google's code reads it.
    written_act = json.loads((output / "tf" / "bert_config.json").read_text())["hidden_act"]
    assert written_act == {"gelu": "gelu_exact", "gelu_new": "gelu"}[source["bert_config"].hidden_act]
    config = BertConfig.from_json_file(str(output / "tf" / "bert_config.json"), google_names=True)
    same_function = {"gelu": "gelu", "gelu_new": "gelu_tanh"}[source["bert_config"].hidden_act]
    assert config == dataclasses.replace(source["bert_config"], hidden_act=same_function)
    assert (output / "tf" / "vocab.txt").read_text() == Path(source["vocab"]).read_text()
    features = batch(config.vocab_size)
    mlm, nsp = our_logits(source["prefix"], source["bert_config"], use_nsp, features)
    exported_mlm, exported_nsp = our_logits(prefix, config, use_nsp, features)
    np.testing.assert_array_equal(exported_mlm, mlm)
    if use_nsp:
        np.testing.assert_array_equal(exported_nsp, nsp)
    assert summary["global_step"] == 1234


# --------------------------------------------------------------------------
# hf/: Transformers
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transformers_offline():
    torch = pytest.importorskip("torch")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    transformers = pytest.importorskip("transformers")
    if int(transformers.__version__.split(".")[0]) < 5:
        pytest.skip(f"the export targets Transformers 5, found {transformers.__version__}")
    torch.manual_seed(0)
    return torch, transformers


def hf_logits(model, torch, features, use_nsp):
    input_ids, input_mask, segment_ids, positions = (torch.from_numpy(np.asarray(x, np.int64)) for x in features)
    with torch.no_grad():
        outputs = model(input_ids=input_ids, attention_mask=input_mask, token_type_ids=segment_ids)
    scores = outputs.prediction_logits if use_nsp else outputs.logits
    index = positions[:, :, None].expand(-1, -1, scores.shape[-1])
    mlm = torch.gather(scores, 1, index).numpy()
    return mlm, outputs.seq_relationship_logits.numpy() if use_nsp else None


def test_hf_model_loads_with_no_missing_or_unexpected_keys_and_matches_our_logits(nsp_export, transformers_offline):
    torch, transformers = transformers_offline
    source, output, _ = nsp_export
    hf_dir = str(output / "hf")
    config = json.loads((output / "hf" / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForPreTraining"]
    assert config["hidden_act"] == "gelu" and config["layer_norm_eps"] == 1e-12
    assert config["vocab_size"] == source["bert_config"].vocab_size

    model, info = transformers.AutoModelForPreTraining.from_pretrained(hf_dir, output_loading_info=True)
    assert type(model).__name__ == "BertForPreTraining"
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    model.eval()
    # The decoder is tied, not a copy: fine-tuning the embeddings moves it too.
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()

    features = batch(source["bert_config"].vocab_size)
    mlm, nsp = our_logits(source["prefix"], source["bert_config"], True, features)
    hf_mlm, hf_nsp = hf_logits(model, torch, features, True)
    assert np.abs(hf_mlm - mlm).max() <= TOLERANCE
    assert np.abs(hf_nsp - nsp).max() <= TOLERANCE
    assert np.abs(mlm).max() > 1.0  # non-trivial logits: the comparison means something


def test_safetensors_keys_are_the_state_dict_without_tied_tensors(nsp_export, mlm_only_export, transformers_offline):
    from safetensors import safe_open

    _, transformers = transformers_offline
    for (source, output, _), architecture in ((nsp_export, "BertForPreTraining"), (mlm_only_export, "BertForMaskedLM")):
        config = transformers.AutoConfig.from_pretrained(str(output / "hf"))
        reference = getattr(transformers, architecture)(config)
        tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
        expected = {key: tuple(value.shape) for key, value in reference.state_dict().items() if key not in tied}
        with safe_open(str(output / "hf" / "model.safetensors"), "np") as handle:
            assert handle.metadata() == {"format": "pt"}
            written = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
        assert written == expected, architecture


def test_mlm_only_model_loads_as_masked_lm_and_matches_our_logits(mlm_only_export, transformers_offline):
    torch, transformers = transformers_offline
    source, output, summary = mlm_only_export
    assert summary["architecture"] == "BertForMaskedLM"
    config = json.loads((output / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"] and config["hidden_act"] == "gelu_new"
    model, info = transformers.AutoModelForMaskedLM.from_pretrained(str(output / "hf"), output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    model.eval()
    features = batch(source["bert_config"].vocab_size, seed=3)
    mlm, _ = our_logits(source["prefix"], source["bert_config"], False, features)
    hf_mlm, _ = hf_logits(model, torch, features, False)
    assert np.abs(hf_mlm - mlm).max() <= TOLERANCE


@pytest.mark.parametrize("which", ["nsp_export", "mlm_only_export"])
def test_hf_tokenizer_gives_the_records_ids(which, request, transformers_offline):
    _, transformers = transformers_offline
    source, output, _ = request.getfixturevalue(which)
    do_lower_case = which == "mlm_only_export"
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(output / "hf"))
    ours = load_tokenizer(source["vocab"], do_lower_case)
    assert tokenizer.is_fast and tokenizer.vocab_size == source["bert_config"].vocab_size
    assert tokenizer.model_max_length == source["bert_config"].max_position_embeddings
    samples = SENTENCES + [
        "UPPER lower MiXeD Café CAFÉ cafe\u0301 Ångström",
        "tabs\tand\u00a0non-breaking\u3000spaces, zero\u200bwidth and control\x07 chars",
        "a" * 120 + " supercalifragilisticexpialidocious unseenwordxyz",
        "",
    ]
    for text in samples:
        expected = ours.encode(text, add_special_tokens=False).ids
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == expected, text
    # Pairs are built as in the records: [CLS] A [SEP] B [SEP], segment ids 0 then 1.
    first, second = SENTENCES[0], SENTENCES[3]
    encoded = tokenizer(first, second)
    a = ours.encode(first, add_special_tokens=False).ids
    b = ours.encode(second, add_special_tokens=False).ids
    vocab = tokenizer.get_vocab()
    assert encoded["input_ids"] == [vocab["[CLS]"], *a, vocab["[SEP]"], *b, vocab["[SEP]"]]
    assert encoded["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    # [MASK] in text is the mask token (what the fill-mask pipeline relies on).
    assert tokenizer.convert_ids_to_tokens(tokenizer("The [MASK] rose.")["input_ids"])[2] == "[MASK]"
    settings = json.loads((output / "hf" / "tokenizer_config.json").read_text())
    assert settings["do_lower_case"] is do_lower_case


# --------------------------------------------------------------------------
# The model card and the command line
# --------------------------------------------------------------------------


def test_model_card_reports_training_corpus_and_evaluation(nsp_export):
    source, output, _ = nsp_export
    card = (output / "README.md").read_text()
    assert card == (output / "hf" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers")
    assert "# run" in card  # results/<run>/export is titled by the run
    for text in ("phase128", "phase512", "0 → 1,000 (1,000 steps)", "1,000 → 1,234 (234 steps)", "0.4321", "0.5678",
                 "0.9100", "98,765", "5,555", "7,654,321", "cased", f"{source['bert_config'].vocab_size} WordPiece",
                 "AutoModelForPreTraining", "bert_model.ckpt", "global step 1,234",
                 "0.5678, 9.1x the baseline 0.0625 (always 'the')", "Trained from randomly initialised weights."):
        assert text in card, text


def load_script():
    spec = importlib.util.spec_from_file_location("export_model_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_exports_by_hand_and_reports_bad_input_in_one_line(mlm_only_export, tmp_path, capsys):
    source, _, _ = mlm_only_export
    script = load_script()
    output = tmp_path / "by-hand"
    assert script.main([
        "--checkpoint", source["prefix"] + ".index", "--bert_config_file", source["config"],
        "--vocab_file", source["vocab"], "--do_lower_case", "--output", str(output),
    ]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["architecture"] == "BertForMaskedLM" and summary["global_step"] == 1234
    assert (output / "hf" / "model.safetensors").is_file() and (output / "README.md").is_file()

    with pytest.raises(SystemExit) as exit_info:
        from bert_pretraining.errors import run_main

        run_main(script.main, [
            "--checkpoint", source["prefix"], "--bert_config_file", source["config"],
            "--vocab_file", source["vocab"], "--do_lower_case=true", "--use_next_sentence_prediction", "true",
            "--output", str(tmp_path / "x"),
        ])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "no next-sentence head" in error and error.count("\n") == 1
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------
# Refusals: clear errors, never a half-written export
# --------------------------------------------------------------------------


def no_export_left(parent, name):
    return not any(entry == name or entry.startswith(f".{name}.tmp-") for entry in os.listdir(parent))


def test_missing_checkpoint_is_refused(mlm_only_export, tmp_path):
    source, _, _ = mlm_only_export
    missing = os.path.join(os.path.dirname(source["prefix"]), "model.ckpt-999")
    with pytest.raises(CheckpointError, match=r"model\.ckpt-999 does not exist"):
        export.export_model(missing + ".index", source["config"], source["vocab"], str(tmp_path / "out"),
                            do_lower_case=True)
    assert no_export_left(tmp_path, "out")


def test_checkpoint_of_another_model_size_is_refused(mlm_only_export, tmp_path):
    source, _, _ = mlm_only_export
    bigger = BertConfig(**{**source["bert_config"].to_dict(), "hidden_size": 48, "num_attention_heads": 4})
    config_path = str(tmp_path / "bert_config.json")
    bigger.to_json_file(config_path)
    with pytest.raises(CheckpointError, match=r"the model config \(bert_config.json\) changed"):
        export.export_model(source["prefix"], config_path, source["vocab"], str(tmp_path / "out"),
                            do_lower_case=True)
    # A checkpoint that does not record its inputs (another tool's) is refused by the shapes of its tensors.
    unrecorded = str(tmp_path / "model.ckpt-1234")
    for suffix in (checkpoints.INDEX_SUFFIX, checkpoints.DATA_SUFFIX):
        shutil.copy(source["prefix"] + suffix, unrecorded + suffix)
    with pytest.raises(CheckpointError, match=r"has shape \[\d+, 32\], the model expects \[\d+, 48\]"):
        export.export_model(unrecorded, config_path, source["vocab"], str(tmp_path / "out"), do_lower_case=True)
    assert no_export_left(tmp_path, "out")


def test_vocabulary_of_another_size_is_refused(mlm_only_export, tmp_path):
    source, _, _ = mlm_only_export
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(Path(source["vocab"]).read_text() + "extra\n")
    with pytest.raises(WorkflowError, match="tokens but .* says vocab_size"):
        export.export_model(source["prefix"], source["config"], str(vocab), str(tmp_path / "out"), do_lower_case=True)
    assert no_export_left(tmp_path, "out")


def test_a_vocabulary_the_weights_were_not_trained_with_is_refused(mlm_only_export, tmp_path):
    """Same size, two ids swapped: the embedding rows would no longer match the tokenizer."""
    source, _, _ = mlm_only_export
    tokens = Path(source["vocab"]).read_text().splitlines()
    tokens[-1], tokens[-2] = tokens[-2], tokens[-1]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tokens) + "\n")
    with pytest.raises(CheckpointError, match=r"trained on other inputs .*the vocabulary \(vocab.txt\) changed"):
        export.export_model(source["prefix"], source["config"], str(vocab), str(tmp_path / "out"), do_lower_case=True)
    assert no_export_left(tmp_path, "out")


def test_casing_must_be_known_and_match_the_records(mlm_only_export, tmp_path):
    source, _, _ = mlm_only_export
    with pytest.raises(WorkflowError, match="casing is unknown: pass --do_lower_case"):
        export.export_model(source["prefix"], source["config"], source["vocab"], str(tmp_path / "out"))
    sidecar = tmp_path / "records.json"
    sidecar.write_text(json.dumps({"do_lower_case": True, "num_instances": 1}))
    with pytest.raises(WorkflowError, match="records in .*records.json were made with do_lower_case True"):
        export.export_model(source["prefix"], source["config"], source["vocab"], str(tmp_path / "out"),
                            do_lower_case=False, records_sidecars=[str(sidecar)])
    assert no_export_left(tmp_path, "out")


def test_non_empty_output_is_refused_and_left_alone(mlm_only_export, tmp_path):
    source, _, _ = mlm_only_export
    output = tmp_path / "export"
    output.mkdir()
    (output / "precious.txt").write_text("keep me")
    with pytest.raises(WorkflowError, match="exists and is not empty"):
        export.export_model(source["prefix"], source["config"], source["vocab"], str(output), do_lower_case=True)
    assert os.listdir(output) == ["precious.txt"]
    # An existing empty directory (made by a scheduler, say) is fine.
    empty = tmp_path / "empty"
    empty.mkdir()
    export.export_model(source["prefix"], source["config"], source["vocab"], str(empty), do_lower_case=True)
    assert sorted(os.listdir(empty)) == ["README.md", "hf", "tf"]


def test_failure_half_way_leaves_nothing(mlm_only_export, tmp_path, monkeypatch):
    source, _, _ = mlm_only_export

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "write_hf_model", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export.export_model(source["prefix"], source["config"], source["vocab"], str(tmp_path / "out"),
                            do_lower_case=True)
    assert os.listdir(tmp_path) == []


def test_staging_left_by_a_killed_export_on_this_host_is_removed(mlm_only_export, tmp_path):
    import socket
    import subprocess
    import sys

    source, _, _ = mlm_only_export
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.tmp-{socket.gethostname()}-{int(dead.stdout)}"
    other_host = tmp_path / ".out.tmp-some-other-node-1"
    for directory in (stale, other_host):
        (directory / "tf").mkdir(parents=True)
    export.export_model(source["prefix"], source["config"], source["vocab"], str(tmp_path / "out"), do_lower_case=True)
    assert sorted(os.listdir(tmp_path)) == [other_host.name, "out"]


def test_diverged_checkpoint_is_refused(tmp_path):
    config = BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    model = BertPretrainer(config, use_next_sentence_prediction=False)
    model.variables_by_name["bert/encoder/layer_0/output/dense/bias"].assign(tf.fill([8], np.nan))
    ref = checkpoints.save_checkpoint(str(tmp_path / "ckpt"), 5, dict(model.variables_by_name))
    config.to_json_file(str(tmp_path / "bert_config.json"))
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e"]) + "\n")
    with pytest.raises(CheckpointError, match="layer_0/output/dense/bias holds NaN"):
        export.export_model(ref.prefix, str(tmp_path / "bert_config.json"), str(tmp_path / "vocab.txt"),
                            str(tmp_path / "out"), do_lower_case=False)
    assert not (tmp_path / "out").exists()


def test_hf_names_follow_transformers_rules():
    assert export.hf_name("bert/encoder/layer_11/attention/self/query/kernel") == (
        "bert.encoder.layer.11.attention.self.query.weight", True)
    assert export.hf_name("bert/embeddings/LayerNorm/gamma") == ("bert.embeddings.LayerNorm.weight", False)
    assert export.hf_name("bert/embeddings/word_embeddings") == ("bert.embeddings.word_embeddings.weight", False)
    assert export.hf_name("cls/predictions/output_bias") == ("cls.predictions.bias", False)
    assert export.hf_name("cls/seq_relationship/output_weights") == ("cls.seq_relationship.weight", False)
    with pytest.raises(ValueError):
        export.hf_name("bert/encoder/layer_0/attention/self/query/kernel/adam_m")
