"""The plan's check of a phase's training jobs against its records (rules/pretrain.smk)."""

import pytest

from bert_pretraining.errors import ConfigError
from bert_pretraining.job_resources import check_training_job
from bert_pretraining.settings import settings_from_config
from synthetic_records import make_records
from workflow_helpers import REPO, demo_dag_config

ONE_PROCESS = {"nodes": 1, "tasks_per_node": 1}


@pytest.fixture
def phase_with_small_records(tmp_path, monkeypatch):
    """The demo's settings, with phase 1's records (results_dir is relative) holding 4 x 5 records."""
    monkeypatch.chdir(REPO)  # the config's corpus files are relative to the repository
    settings = settings_from_config(demo_dag_config())
    monkeypatch.chdir(tmp_path)
    phase = settings.phases[0]
    assert phase.batch_size_per_gpu > 4 * 5
    make_records(settings.records_dir(phase.max_seq_length), files=4, per_file=5)
    return settings, phase


def test_a_batch_larger_than_the_records_is_refused_by_the_plan(phase_with_small_records):
    settings, phase = phase_with_small_records
    with pytest.raises(ConfigError, match=f"batch_size_per_gpu {phase.batch_size_per_gpu} x 1 ranks does not fit"):
        check_training_job(settings, phase, "pretrain_phase128", ONE_PROCESS)


def test_a_cluster_jobs_own_parse_does_not_refuse_it(phase_with_small_records):
    """A job of another rule (summarize_records of phase 2) must not fail for phase 1's batch: check_phase128 does."""
    settings, phase = phase_with_small_records
    assert check_training_job(settings, phase, "pretrain_phase128", ONE_PROCESS, check_records=False) == 1
