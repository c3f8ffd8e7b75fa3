"""The compile caches a training job keeps under the run directory (bert_pretraining.compile_cache)."""

import os

from bert_pretraining.compile_cache import (
    CUDA_CACHE_MAXSIZE,
    compile_cache_directory,
    compile_cache_environment,
    has_working_xla_cache,
    use_compile_caches,
)


def test_nothing_set_gives_every_cache():
    added = compile_cache_environment("/run/compile-cache/tf2.21.0-x86_64", {}, job_id="77")
    assert added == {
        "TF_XLA_FLAGS": "--tf_xla_persistent_cache_directory=/run/compile-cache/tf2.21.0-x86_64/xla",
        "CUDA_CACHE_PATH": "/run/compile-cache/tf2.21.0-x86_64/cuda",
        "CUDA_CACHE_MAXSIZE": CUDA_CACHE_MAXSIZE,
        "MIOPEN_USER_DB_PATH": added["MIOPEN_USER_DB_PATH"],
        "MIOPEN_CUSTOM_CACHE_DIR": added["MIOPEN_USER_DB_PATH"],
    }
    assert added["MIOPEN_USER_DB_PATH"] == f"/tmp/miopen-{os.getuid()}-77"
    assert int(CUDA_CACHE_MAXSIZE) == 4 * 1024**3


def test_what_the_user_or_the_site_set_is_kept():
    environ = {
        "TF_XLA_FLAGS": "--tf_xla_persistent_cache_directory=/scratch/mine",
        "CUDA_CACHE_PATH": "/scratch/cuda", "CUDA_CACHE_MAXSIZE": "1000",
        "MIOPEN_USER_DB_PATH": "/tmp/site-miopen",
    }
    assert compile_cache_environment("/run/cache", environ) == {"MIOPEN_CUSTOM_CACHE_DIR": "/tmp/site-miopen"}


def test_other_xla_flags_are_kept_and_the_cache_added():
    added = compile_cache_environment("/c", {"TF_XLA_FLAGS": "--tf_xla_auto_jit=2"})
    assert added["TF_XLA_FLAGS"] == "--tf_xla_auto_jit=2 --tf_xla_persistent_cache_directory=/c/xla"


def test_one_directory_per_tensorflow_version_and_architecture():
    # The XLA cache's key holds neither: a run moved to another TensorFlow or machine starts a new one.
    paths = {compile_cache_directory("/r", version, machine)
             for version in ("2.16.2", "2.21.0") for machine in ("x86_64", "aarch64")}
    assert len(paths) == 4 and all(path.startswith("/r/compile-cache/tf") for path in paths)


def test_use_compile_caches_sets_the_process_environment_and_makes_the_directories(tmp_path):
    environ = {}
    added = use_compile_caches(str(tmp_path / "run"), environ)
    assert environ == added
    xla = environ["TF_XLA_FLAGS"].split("=", 1)[1]
    assert os.path.isdir(xla) and os.path.isdir(environ["CUDA_CACHE_PATH"])
    assert xla.startswith(str(tmp_path / "run" / "compile-cache" / "tf"))


def test_the_xla_cache_from_tensorflow_2_16_on():
    # 2.15's first XLA step fails on CPU with the cache on (tests/test_distributed.py showed it).
    assert [has_working_xla_cache(v) for v in ("2.15.1", "2.16.2", "2.18.1", "2.21.0", "3.0.0")] == [
        False, True, True, True, True]
    assert not has_working_xla_cache("unknown")
    added = compile_cache_environment("/c", {}, xla_cache=False)
    assert "TF_XLA_FLAGS" not in added and added["CUDA_CACHE_PATH"] == "/c/cuda"
