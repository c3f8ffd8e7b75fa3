"""Bad configurations and profiles are refused by `snakemake -n`, naming the key and what was expected.

Every config case runs twice: on a local run, and through the unchanged
production profile (profiles/slurm, 2 nodes x 4 ranks per training job). The
profile cases change a copy of that profile. A refused plan stops before
Snakemake plans a job ("Job stats"), so nothing can be submitted.
"""

import copy
import os

import pytest

from workflow_helpers import REPO, demo_dag_config, load_yaml, run_script, snakemake, write_yaml

pytestmark = [pytest.mark.slow, pytest.mark.snakemake]  # about 120 dry runs of a second each

DEMO = demo_dag_config()
PROFILE = os.path.join(REPO, "profiles", "slurm")
DELETE = object()


def change(path, value):
    """Set (or with DELETE remove) the key at ``path`` of a config or profile."""

    def apply(document):
        node = document
        *parents, last = path
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value

    return apply


def changes(*steps):
    def apply(document):
        for step in steps:
            step(document)

    return apply


BAD_CONFIGS = [
    ("run name with a slash", change(["run_name"], "a/b"), "run_name (value 'a/b')"),
    ("corpus glob matching nothing", change(["corpus", "files"], ["no/such/*.txt"]),
     "corpus.files: the pattern 'no/such/*.txt' matches no file"),
    ("one of two corpus globs matching nothing", change(["corpus", "files"], ["demo/corpus/*.txt", "demo/korpus/*.txt"]),
     "corpus.files: the pattern 'demo/korpus/*.txt' matches no file"),
    ("no corpus files", change(["corpus", "files"], []), "corpus.files (value [])"),
    ("corpus files as a string", change(["corpus", "files"], "demo/corpus/*.txt"), "corpus.files"),
    ("zero shards", change(["corpus", "num_shards"], 0), "corpus.num_shards (value 0)"),
    ("shards as a word", change(["corpus", "num_shards"], "four"), "corpus.num_shards (value 'four')"),
    ("held-out fraction above one half", change(["corpus", "heldout_fraction"], 0.9), "corpus.heldout_fraction (value 0.9)"),
    ("no held-out documents", change(["corpus", "heldout_fraction"], 0), "corpus.heldout_fraction (value 0)"),
    ("tiny vocabulary", change(["vocabulary", "size"], 10), "vocabulary.size (value 10)"),
    ("missing vocabulary file", change(["vocabulary", "file"], "no/vocab.txt"),
     "vocabulary.file: no/vocab.txt: vocabulary file does not exist"),
    ("lower case as a word", change(["vocabulary", "do_lower_case"], "yes"), "vocabulary.do_lower_case (value 'yes')"),
    ("masked_lm_prob above 1", change(["records", "masked_lm_prob"], 1.5), "records.masked_lm_prob (value 1.5)"),
    ("masked_lm_prob beyond the predictions", change(["records", "masked_lm_prob"], 0.3),
     "phases[0].max_predictions_per_seq is 20, fewer than records.masked_lm_prob 0.3 x max_seq_length 128 = 38"),
    ("negative dupe factor", change(["records", "dupe_factor"], -1), "records.dupe_factor (value -1)"),
    ("misspelt records key", change(["records", "dupe"], 3), "'dupe' was unexpected"),
    ("heads do not divide hidden", change(["model", "hidden_size"], 129), "model.hidden_size is 129"),
    ("unknown activation", change(["model", "hidden_act"], "swish"), "model.hidden_act (value 'swish')"),
    ("one token type", change(["model", "type_vocab_size"], 1), "model.type_vocab_size (value 1)"),
    ("dropout above 1", change(["model", "hidden_dropout_prob"], 1.5), "model.hidden_dropout_prob (value 1.5)"),
    ("unknown precision", change(["training", "precision"], "fp8"), "training.precision (value 'fp8')"),
    ("negative learning rate", change(["training", "learning_rate"], -1.0), "training.learning_rate (value -1.0)"),
    ("misspelt training key", change(["training", "learning_rat"], 1e-4), "'learning_rat' was unexpected"),
    ("unknown schedule", change(["training", "learning_rate_schedule"], "cosine"),
     "training.learning_rate_schedule (value 'cosine')"),
    ("unknown engine", change(["training", "distribution"], "deepspeed"), "training.distribution (value 'deepspeed')"),
    ("no checkpoints kept", change(["training", "keep_checkpoints"], 0), "training.keep_checkpoints (value 0)"),
    ("zero evaluation batch", change(["training", "eval_batch_size"], 0), "training.eval_batch_size (value 0)"),
    ("zero accumulation", change(["training", "gradient_accumulation_steps"], 0),
     "training.gradient_accumulation_steps (value 0)"),
    ("training interpreter missing", change(["training", "python"], "envs/none/bin/python"),
     "training.python is 'envs/none/bin/python', which is not an executable file"),
    ("training interpreter not a command", change(["training", "python"], 3), "training.python (value 3)"),
    ("unknown top-level key", change(["phase"], []), "'phase' was unexpected"),
    ("empty results directory", change(["results_dir"], ""), "results_dir (value '')"),
    ("negative steps", change(["phases", 0, "last_step"], -5), "phases[0].last_step (value -5)"),
    ("zero segment steps", change(["phases", 0, "segment_steps"], 0), "phases[0].segment_steps (value 0)"),
    ("no segment steps", change(["phases", 0, "segment_steps"], DELETE), "'segment_steps' is a required property"),
    ("zero batch", change(["phases", 1, "batch_size_per_gpu"], 0), "phases[1].batch_size_per_gpu (value 0)"),
    ("misspelt phase key", change(["phases", 0, "batch_size"], 32), "'batch_size' was unexpected"),
    ("zero accumulation in a phase", change(["phases", 1, "gradient_accumulation_steps"], 0),
     "phases[1].gradient_accumulation_steps (value 0)"),
    ("phase 2 not starting where phase 1 ends", change(["phases", 1, "first_step"], 250),
     "phase512 starts at first_step 250 but phase128 ends at last_step 300"),
    ("phase 2 ending before it starts", change(["phases", 1, "last_step"], 200),
     "phases[1].last_step is 200; expected a step after first_step 300"),
    ("too many predictions", change(["phases", 0, "max_predictions_per_seq"], 126),
     "phases[0].max_predictions_per_seq is 126; expected at most max_seq_length - 3 = 125"),
    ("too few predictions", change(["phases", 1, "max_predictions_per_seq"], 40),
     "phases[1].max_predictions_per_seq is 40, fewer than records.masked_lm_prob 0.15 x max_seq_length 512 = 77"),
    ("sequence longer than positions", change(["phases", 1, "max_seq_length"], 1024),
     "phases[1].max_seq_length is 1024; expected at most model.max_position_embeddings (512)"),
    ("two phases with one length", change(["phases", 1, "max_seq_length"], 128), "max_seq_length is 128 for two phases"),
    ("warmup longer than the schedule", change(["phases", 0, "num_warmup_steps"], 1500),
     "phases[0].num_warmup_steps is 1500; expected at most num_train_steps (1000)"),
    ("continuous schedule with a warmup beyond the run", changes(
        change(["training", "learning_rate_schedule"], "continuous"), change(["phases", 0, "num_warmup_steps"], 500)),
     "phases[0].num_warmup_steps is 500; expected at most num_train_steps (360)"),
    ("training not starting at 0", change(["phases", 0, "first_step"], 10), "phases[0].first_step is 10; expected 0"),
    ("no phases", change(["phases"], []), "phases (value [])"),
    # Snakemake merges --configfile over config.yaml, so a missing section is filled from it;
    # a section of the wrong type is refused.
    ("phases not a list", change(["phases"], "two"), "phases (value 'two')"),
    ("world-writable umask", change(["umask"], "0000"), "umask is 0000, which leaves outputs world-writable"),
    ("umask not octal", change(["umask"], "0999"), "umask (value '0999')"),
]

# Changes to a copy of profiles/slurm, with the demo config made to fit it (8 shards for 8 ranks).
BAD_PROFILES = [
    ("the account from an unset variable", None, None,
     "resource slurm_account is '$SBATCH_ACCOUNT', but the environment variable SBATCH_ACCOUNT is not set"),
    ("an account variable of a rule unset", change(["set-resources", "train_vocab", "slurm_account"], "$NO_SUCH_PROJECT"),
     None, "--set-resources of train_vocab: resource slurm_account is '$NO_SUCH_PROJECT', but the environment "
     "variable NO_SUCH_PROJECT is not set"),
    ("more ranks than record files", None, change(["corpus", "num_shards"], 4),
     "corpus.num_shards is 4, but rule pretrain_phase128 starts 8 ranks (resources nodes=2 x tasks_per_node=4)"),
    ("phase 2 on more ranks than record files", change(["set-resources", "pretrain_phase512", "nodes"], 4), None,
     "corpus.num_shards is 8, but rule pretrain_phase512 starts 16 ranks (resources nodes=4 x tasks_per_node=4)"),
    ("tasks beside tasks_per_node", change(["set-resources", "pretrain_phase128", "tasks"], 8), None,
     "rule pretrain_phase128 sets both resources tasks (8) and tasks_per_node (4)"),
    ("two nodes without a launcher", change(["set-resources", "pretrain_phase128", "mpi"], DELETE), None,
     "rule pretrain_phase128 has resources nodes=2 but no mpi launcher"),
    ("more ranks than GPUs on a node", change(["set-resources", "pretrain_phase128", "tasks_per_node"], 8), None,
     "rule pretrain_phase128 has resources tasks_per_node=8 but gres='gpu:v100:4' gives 4 GPUs per node"),
    ("nodes as a word", change(["set-resources", "pretrain_phase512", "nodes"], "two"), None,
     "resource nodes of rule pretrain_phase512 is 'two'; expected a whole number"),
]

ACCOUNT = {"SBATCH_ACCOUNT": "project_2001234"}


def dry_run(tmp_path, config, *args, env=ACCOUNT):
    """`snakemake -n` in the checkout; outputs under tmp_path, so that a run made there (make demo) changes nothing."""
    if config.get("results_dir", "results") == "results":
        config = {**config, "results_dir": str(tmp_path / "results")}
    path = write_yaml(tmp_path / "config.yaml", config)
    environment = {key: value for key, value in os.environ.items() if key != "SBATCH_ACCOUNT"} | (env or {})
    result = snakemake(REPO, "-n", "--configfile", str(path), *args, timeout=120, env=environment)
    return result.returncode, result.stdout + result.stderr


def assert_refused(returncode, output, expected):
    assert returncode != 0, output
    assert expected in output, output
    assert "Job stats" not in output  # refused before any job was planned: nothing can be submitted
    assert "Traceback" not in output


def write_profile(tmp_path, edit):
    profile = load_yaml(os.path.join(PROFILE, "config.yaml"))
    edit(profile)
    directory = tmp_path / "profile"
    directory.mkdir()
    write_yaml(directory / "config.yaml", profile)
    return str(directory)


def fits_the_profile(config):
    config = copy.deepcopy(config)
    config["corpus"]["num_shards"] = 8
    return config


@pytest.mark.parametrize("profile", [False, True], ids=["local", "profile"])
@pytest.mark.parametrize("name, edit, expected", BAD_CONFIGS, ids=[case[0] for case in BAD_CONFIGS])
def test_bad_config_is_refused_by_dry_run(tmp_path, name, edit, expected, profile):
    config = fits_the_profile(DEMO) if profile else copy.deepcopy(DEMO)
    edit(config)
    args = ["--profile", PROFILE] if profile else []
    assert_refused(*dry_run(tmp_path, config, *args), expected)


def bad_profile_case(tmp_path, profile_edit, config_edit):
    """(config, profile directory) of a BAD_PROFILES case."""
    config = fits_the_profile(DEMO)
    if config_edit:
        config_edit(config)
    return config, write_profile(tmp_path, profile_edit) if profile_edit else PROFILE


@pytest.mark.parametrize("name, profile_edit, config_edit, expected", BAD_PROFILES, ids=[case[0] for case in BAD_PROFILES])
def test_bad_profile_is_refused_by_dry_run(tmp_path, name, profile_edit, config_edit, expected):
    config, profile = bad_profile_case(tmp_path, profile_edit, config_edit)
    env = None if "SBATCH_ACCOUNT is not set" in expected else ACCOUNT
    assert_refused(*dry_run(tmp_path, config, "--profile", profile, env=env), expected)


RANK_CASES = [case for case in BAD_PROFILES if "rule pretrain_" in case[3]]


@pytest.mark.parametrize("name, profile_edit, config_edit, expected", RANK_CASES, ids=[case[0] for case in RANK_CASES])
def test_bad_profile_is_refused_by_the_plan_as_by_the_dry_run(tmp_path, name, profile_edit, config_edit, expected):
    """`plan.py --profile` checks the training jobs' resources with the dry run's checks, before anything is queued."""
    config, profile = bad_profile_case(tmp_path, profile_edit, config_edit)
    path = write_yaml(tmp_path / "config.yaml", {**config, "results_dir": str(tmp_path / "results")})
    result = run_script("plan.py", "--configfile", path, "--profile", profile)
    assert_refused(result.returncode, result.stdout + result.stderr, expected)
    assert "Traceback" not in result.stderr


def test_the_demo_through_the_unchanged_profile_is_refused_naming_shards_and_ranks(tmp_path):
    returncode, output = dry_run(tmp_path, DEMO, "--profile", PROFILE)
    assert_refused(returncode, output, "corpus.num_shards is 4, but rule pretrain_phase128 starts 8 ranks")


@pytest.mark.parametrize("profile", [False, True], ids=["local", "profile"])
def test_a_config_that_fits_is_planned(tmp_path, profile):
    config = fits_the_profile(DEMO)
    returncode, output = dry_run(tmp_path, config, *(["--profile", PROFILE] if profile else []))
    assert returncode == 0, output
    assert "Job stats" in output


def test_missing_special_tokens_in_given_vocabulary(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\nhello\n", encoding="utf-8")
    config = copy.deepcopy(DEMO)
    config["vocabulary"]["file"] = str(vocab)
    returncode, output = dry_run(tmp_path, config)
    assert_refused(returncode, output, f"vocabulary.file: {vocab}: the vocabulary lacks the special token(s) [SEP] [MASK]")



def test_a_yaml_error_in_the_workflows_config_yaml_names_its_line(tmp_path):
    """rules/config.smk reads config.yaml before Snakemake's `configfile:`, whose message names no file or line.

    A --configfile is read by Snakemake before the Snakefile, out of the
    workflow's reach (docs/upstream/snakemake-configfile-yaml-error.md).
    """
    with open(os.path.join(REPO, "config.yaml"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    broken = next(index for index, line in enumerate(lines) if line.startswith("run_name: "))
    lines[broken] = lines[broken].replace("run_name: ", "run_name: [")
    (tmp_path / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = snakemake(tmp_path, "-n", "--snakefile", os.path.join(REPO, "Snakefile"), timeout=120)
    output = result.stdout + result.stderr
    assert_refused(result.returncode, output, "config file config.yaml is not valid YAML")
    assert f'in "config.yaml", line {broken + 1}, column' in output, output
