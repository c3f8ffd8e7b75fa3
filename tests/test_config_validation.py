"""Bad configurations are refused by `snakemake -n`, naming the key and what was expected."""

import copy
import os

import pytest

from workflow_helpers import REPO, load_yaml, snakemake, write_yaml

DEMO = load_yaml(os.path.join(REPO, "demo", "config.yaml"))


def mutate(path, value):
    def apply(config):
        node = config
        *parents, last = path
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return apply


DELETE = object()

BAD_CONFIGS = [
    ("run name with a slash", mutate(["run_name"], "a/b"), "run_name"),
    ("corpus glob matching nothing", mutate(["corpus", "files"], ["no/such/*.txt"]), "corpus.files: the pattern 'no/such/*.txt' matches no file"),
    ("zero shards", mutate(["corpus", "num_shards"], 0), "num_shards"),
    ("shards as a word", mutate(["corpus", "num_shards"], "four"), "num_shards"),
    ("held-out fraction above one half", mutate(["corpus", "heldout_fraction"], 0.9), "heldout_fraction"),
    ("tiny vocabulary", mutate(["vocabulary", "size"], 10), "size"),
    ("missing vocabulary file", mutate(["vocabulary", "file"], "no/vocab.txt"), "vocabulary.file: no/vocab.txt does not exist"),
    ("masked_lm_prob above 1", mutate(["records", "masked_lm_prob"], 1.5), "masked_lm_prob"),
    ("negative dupe factor", mutate(["records", "dupe_factor"], -1), "dupe_factor"),
    ("heads do not divide hidden", mutate(["model", "hidden_size"], 129), "model.hidden_size is 129"),
    ("unknown activation", mutate(["model", "hidden_act"], "swish"), "hidden_act"),
    ("unknown precision", mutate(["training", "precision"], "fp8"), "precision"),
    ("negative learning rate", mutate(["training", "learning_rate"], -1.0), "learning_rate"),
    ("misspelt key", mutate(["training", "learning_rat"], 1e-4), "learning_rat"),
    ("negative steps", mutate(["phases", 0, "last_step"], -5), "last_step"),
    ("zero segment steps", mutate(["phases", 0, "segment_steps"], 0), "segment_steps"),
    ("zero batch", mutate(["phases", 0, "batch_size_per_gpu"], 0), "batch_size_per_gpu"),
    ("phase 2 not starting where phase 1 ends", mutate(["phases", 1, "first_step"], 250), "phase512 starts at first_step 250 but phase128 ends at last_step 300"),
    ("phase 2 ending before it starts", mutate(["phases", 1, "last_step"], 200), "phases[1].last_step is 200; expected a step after first_step 300"),
    ("too many predictions", mutate(["phases", 0, "max_predictions_per_seq"], 126), "phases[0].max_predictions_per_seq is 126; expected at most max_seq_length - 3 = 125"),
    ("sequence longer than positions", mutate(["phases", 1, "max_seq_length"], 1024), "phases[1].max_seq_length is 1024; expected at most model.max_position_embeddings (512)"),
    ("two phases with one length", mutate(["phases", 1, "max_seq_length"], 128), "max_seq_length is 128 for two phases"),
    ("warmup longer than the schedule", mutate(["phases", 0, "num_warmup_steps"], 1000), "phases[0].num_warmup_steps is 1000; expected at most num_train_steps (300)"),
    ("training not starting at 0", mutate(["phases", 0, "first_step"], 10), "phases[0].first_step is 10; expected 0"),
    ("no phases", mutate(["phases"], []), "phases"),
    ("world-writable umask", mutate(["umask"], "0000"), "umask is 0000, which leaves outputs world-writable"),
    ("umask not octal", mutate(["umask"], "0999"), "umask"),
    ("training interpreter missing", mutate(["training", "python"], "envs/none/bin/python"), "training.python is 'envs/none/bin/python', which is not an executable file"),
    ("training interpreter not a command", mutate(["training", "python"], 3), "python"),
    # Snakemake merges --configfile over config.yaml, so a missing section is filled from it;
    # a section of the wrong type is refused.
    ("phases not a list", mutate(["phases"], "two"), "phases"),
]


@pytest.mark.parametrize("name, change, expected", BAD_CONFIGS, ids=[case[0] for case in BAD_CONFIGS])
def test_bad_config_is_refused_by_dry_run(tmp_path, name, change, expected):
    config = copy.deepcopy(DEMO)
    change(config)
    path = write_yaml(tmp_path / "config.yaml", config)
    result = snakemake(REPO, "-n", "--configfile", str(path), timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert expected in output, output
    assert "Job stats" not in output  # refused before any job was planned


def test_missing_special_tokens_in_given_vocabulary(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\nhello\n", encoding="utf-8")
    config = copy.deepcopy(DEMO)
    config["vocabulary"]["file"] = str(vocab)
    result = snakemake(REPO, "-n", "--configfile", str(write_yaml(tmp_path / "c.yaml", config)), timeout=120)
    assert result.returncode != 0
    assert f"vocabulary.file: {vocab} lacks [SEP] [MASK]" in result.stdout + result.stderr
