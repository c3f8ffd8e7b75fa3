"""Compile caches that outlive a training job, so that later segments start without recompiling.

A run trains in segments, each a new job and a new process. Three compilers would otherwise
start from nothing in every segment:

* XLA: TensorFlow's persistent compilation cache (`--tf_xla_persistent_cache_directory` in
  TF_XLA_FLAGS) keeps each compiled `jit_compile` function on disk. Its key holds neither
  TensorFlow's version nor the device, so the directory is one per TensorFlow version and
  machine architecture. Used from TensorFlow 2.16 on: 2.15 has the flag, but its first XLA
  step then fails on CPU ("TargetRegistry::lookupTarget failed: No available targets are
  compatible with triple "unknown""; measured here, 2.16, 2.18 and 2.21 work).
* CUDA: TensorFlow's wheels carry Hopper (sm_90) code only as PTX, which the driver compiles on
  the first start on an H100/GH200 (tensorflow#60739, #62320: "could take 30 minutes or
  longer") and keeps in its JIT cache: CUDA_CACHE_PATH (default ~/.nv/ComputeCache, where
  home quotas are small) and CUDA_CACHE_MAXSIZE (at most 4 GiB).
* MIOpen (ROCm): LUMI asks for its databases on the node's /tmp, as Lustre lacks what MIOpen's
  SQLite files need (LUMI's PyTorch page); /tmp is the job's own, so MIOpen is not kept between
  jobs. BERT's matrix products go to rocBLAS/hipBLASLt, not MIOpen, so little is lost.

Variables the user (or the site's module) has set are left as they are.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform

from .run_layout import COMPILE_CACHE_DIR, RunLayout  # noqa: F401 (COMPILE_CACHE_DIR: the benchmark reads it here)

CUDA_CACHE_MAXSIZE = str(4 * 1024**3)  # the driver's maximum
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-rocm", "tensorflow-macos", "tf-nightly")
XLA_CACHE_FROM = (2, 16)  # the first TensorFlow whose persistent XLA cache works (see above)


def tensorflow_version() -> str:
    """The installed TensorFlow's version, without importing it (the variables must come first)."""
    for name in TENSORFLOW_DISTRIBUTIONS:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def has_working_xla_cache(version: str) -> bool:
    """True for TensorFlow 2.16 and later; False for 2.15 and for a version that cannot be read."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= XLA_CACHE_FROM


def compile_cache_directory(run_dir: str, version: str, machine: str | None = None) -> str:
    return RunLayout(run_dir).compile_cache(version, machine or platform.machine())


def compile_cache_environment(
    cache_dir: str, environ, job_id: str | None = None, *, xla_cache: bool = True
) -> dict[str, str]:
    """The variables to add to `environ` for the caches in `cache_dir`; those already set are kept."""
    added = {}
    xla_flags = environ.get("TF_XLA_FLAGS", "")
    if xla_cache and "--tf_xla_persistent_cache_directory" not in xla_flags:
        added["TF_XLA_FLAGS"] = f"{xla_flags} --tf_xla_persistent_cache_directory={cache_dir}/xla".strip()
    defaults = {
        "CUDA_CACHE_PATH": os.path.join(cache_dir, "cuda"),
        "CUDA_CACHE_MAXSIZE": CUDA_CACHE_MAXSIZE,
        # By uid: a container may have no passwd entry for the user.
        "MIOPEN_USER_DB_PATH": f"/tmp/miopen-{os.getuid()}-{job_id or os.getpid()}",
    }
    defaults["MIOPEN_CUSTOM_CACHE_DIR"] = environ.get("MIOPEN_USER_DB_PATH", defaults["MIOPEN_USER_DB_PATH"])
    added.update({name: value for name, value in defaults.items() if name not in environ})
    return added


def use_compile_caches(run_dir: str, environ=os.environ) -> dict[str, str]:
    """Set the caches' variables for this process (before TensorFlow is imported); returns what was set."""
    version = tensorflow_version()
    cache_dir = compile_cache_directory(os.path.abspath(run_dir), version)
    added = compile_cache_environment(
        cache_dir, environ, environ.get("SLURM_JOB_ID"), xla_cache=has_working_xla_cache(version)
    )
    if "TF_XLA_FLAGS" in added:
        os.makedirs(os.path.join(cache_dir, "xla"), exist_ok=True)
    if "CUDA_CACHE_PATH" in added:
        os.makedirs(added["CUDA_CACHE_PATH"], exist_ok=True)
    environ.update(added)
    return added
