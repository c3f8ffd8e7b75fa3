"""Training checkpoints: name-based, published atomically, verified on restore.

A checkpoint ``<dir>/model.ckpt-<step>`` is a TensorFlow bundle (``.index`` +
``.data-00000-of-00001``) whose tensor names are Google's
(``bert/encoder/layer_0/attention/self/query/kernel``, ``.../adam_m``,
``global_step``), so the tools that read Google's checkpoints read ours. It
is written with ``SaveV2`` rather than ``tf.train.Checkpoint`` because object-
based names depend on the Python object graph, and ours must not.

Publishing: the bundle is written into a private temporary directory, a
manifest (sizes and SHA-256 of both files) is written next to it, then data,
manifest and finally the index are renamed into place. The index appears
last, so a checkpoint whose index exists is complete; a killed save leaves
only a ``.saving-*`` directory, which the next save removes.

Each segment's final checkpoint is also hard-linked into ``.segment-ends/``:
Snakemake deletes a failed job's declared outputs (a TIMEOUT after the final
save, for example), and the link keeps the data, at no extra disk cost.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass

from .files import AtomicFile, file_sha256, read_json, write_json
from .errors import CheckpointError

log = logging.getLogger(__name__)

DATA_SUFFIX = ".data-00000-of-00001"
INDEX_SUFFIX = ".index"
MANIFEST_SUFFIX = ".manifest.json"
SEGMENT_ENDS_DIR = ".segment-ends"
_INDEX_NAME = re.compile(r"^model\.ckpt-(\d+)\.index$")


@dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint on disk: its global step and file prefix."""

    step: int
    prefix: str

    @property
    def files(self) -> list[str]:
        return [self.prefix + INDEX_SUFFIX, self.prefix + DATA_SUFFIX]


def checkpoint_prefix(directory: str, step: int) -> str:
    return os.path.join(directory, f"model.ckpt-{step}")


def step_of(prefix: str) -> int:
    """The global step in a prefix such as ``.../model.ckpt-260000``."""
    match = re.search(r"model\.ckpt-(\d+)$", prefix)
    if not match:
        raise CheckpointError(f"{prefix}: expected a checkpoint prefix of the form model.ckpt-<step>")
    return int(match.group(1))


def normalize_prefix(path: str) -> str:
    """Accept a prefix or one of its files (``.index``, ``.data-*``, manifest)."""
    for suffix in (INDEX_SUFFIX, DATA_SUFFIX, MANIFEST_SUFFIX):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(directory: str, step: int, tensors: dict) -> CheckpointRef:
    """Write ``tensors`` (name -> tensor or variable) as model.ckpt-<step>, atomically."""
    import tensorflow as tf

    os.makedirs(directory, exist_ok=True)
    _remove_stale_saves(directory)
    staging = os.path.join(directory, f".saving-{step}-{os.getpid()}")
    os.makedirs(staging)
    try:
        staged_prefix = os.path.join(staging, f"model.ckpt-{step}")
        names = list(tensors)
        values = [tf.convert_to_tensor(tensors[name]) for name in names]
        tf.raw_ops.SaveV2(
            prefix=staged_prefix,
            tensor_names=names,
            shape_and_slices=[""] * len(names),
            tensors=values,
        )
        manifest = {
            "step": int(step),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "num_tensors": len(names),
            "files": {
                os.path.basename(checkpoint_prefix(directory, step) + suffix): {
                    "bytes": os.path.getsize(staged_prefix + suffix),
                    "sha256": file_sha256(staged_prefix + suffix),
                }
                for suffix in (DATA_SUFFIX, INDEX_SUFFIX)
            },
        }
        write_json(staged_prefix + MANIFEST_SUFFIX, manifest, indent=1)
        for suffix in (DATA_SUFFIX, INDEX_SUFFIX):
            with open(staged_prefix + suffix, "rb") as handle:
                os.fsync(handle.fileno())
        final_prefix = checkpoint_prefix(directory, step)
        # The index goes last: its presence is what marks a complete checkpoint.
        for suffix in (DATA_SUFFIX, MANIFEST_SUFFIX, INDEX_SUFFIX):
            _replace(staged_prefix + suffix, final_prefix + suffix)
        _fsync_directory(directory)
    except (OSError, tf.errors.OpError) as error:  # a full disk in SaveV2 is a ResourceExhaustedError
        raise CheckpointError(
            f"could not save checkpoint model.ckpt-{step} in {directory}: {error}; "
            "the previous checkpoint stays the latest"
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_checkpoint_state(directory, step)
    return CheckpointRef(step, final_prefix)


def _replace(source: str, target: str) -> None:
    """Rename over ``target``; a read-only (protected) old file is unlinked first."""
    if os.path.exists(target) and not os.access(target, os.W_OK):
        os.unlink(target)
    os.replace(source, target)


def _remove_stale_saves(directory: str) -> None:
    for name in os.listdir(directory):
        if name.startswith(".saving-"):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def _write_checkpoint_state(directory: str, step: int) -> None:
    """The ``checkpoint`` file that tf.train.latest_checkpoint and Google's tools read."""
    steps = [ref.step for ref in list_checkpoints(directory, include_segment_ends=False)]
    newest = max(steps, default=step)
    lines = [f'model_checkpoint_path: "model.ckpt-{newest}"']
    lines += [f'all_model_checkpoint_paths: "model.ckpt-{s}"' for s in steps]
    with AtomicFile(os.path.join(directory, "checkpoint")) as out:
        out.write("\n".join(lines) + "\n")


def list_checkpoints(directory: str, include_segment_ends: bool = True) -> list[CheckpointRef]:
    """Checkpoints whose index file exists, oldest first (segment-end links included)."""
    found: dict[int, CheckpointRef] = {}
    places = [os.path.join(directory, SEGMENT_ENDS_DIR)] if include_segment_ends else []
    places.append(directory)  # the main directory wins over a link of the same step
    for place in places:
        if not os.path.isdir(place):
            continue
        for name in os.listdir(place):
            match = _INDEX_NAME.match(name)
            if match:
                step = int(match.group(1))
                found[step] = CheckpointRef(step, os.path.join(place, name[: -len(INDEX_SUFFIX)]))
    return [found[step] for step in sorted(found)]


def verify_checkpoint(prefix: str) -> list[str]:
    """Problems found in a checkpoint's files; an empty list means it is intact.

    Checkpoints written by other tools have no manifest: they are accepted when
    both files exist and TensorFlow can read the index.
    """
    problems = []
    for path in (prefix + INDEX_SUFFIX, prefix + DATA_SUFFIX):
        if not os.path.isfile(path):
            problems.append(f"{path} is missing")
    if problems:
        return problems
    manifest_path = prefix + MANIFEST_SUFFIX
    if os.path.isfile(manifest_path):
        try:
            expected = read_json(manifest_path)["files"]
        except (OSError, ValueError, KeyError) as error:
            return [f"{manifest_path} is unreadable ({error})"]
        for suffix in (INDEX_SUFFIX, DATA_SUFFIX):
            path = prefix + suffix
            entry = expected.get(os.path.basename(checkpoint_prefix("", step_of(prefix)) + suffix))
            if entry is None:
                problems.append(f"{manifest_path} does not list {os.path.basename(path)}")
                continue
            size = os.path.getsize(path)
            if size != entry["bytes"]:
                problems.append(f"{path} has {size} bytes, expected {entry['bytes']} (truncated?)")
            elif file_sha256(path) != entry["sha256"]:
                problems.append(f"{path} does not match its SHA-256 in {os.path.basename(manifest_path)} (corrupted)")
        return problems
    try:
        import tensorflow as tf

        tf.train.load_checkpoint(prefix)
    except Exception as error:  # TensorFlow raises several kinds for bad bundles
        problems.append(f"{prefix}{INDEX_SUFFIX} cannot be read by TensorFlow ({type(error).__name__})")
    return problems


def newest_valid_checkpoint(
    directory: str, *, min_step: int | None = None, max_step: int | None = None
) -> CheckpointRef | None:
    """The newest intact checkpoint with min_step <= step <= max_step.

    A damaged newer checkpoint is skipped with a warning that names its files,
    so a crash during a save or a corrupted disk block costs one checkpoint
    interval, not the run.
    """
    for ref in reversed(list_checkpoints(directory)):
        if (min_step is not None and ref.step < min_step) or (max_step is not None and ref.step > max_step):
            continue
        problems = verify_checkpoint(ref.prefix)
        if not problems:
            return ref
        log.warning("skipping damaged checkpoint model.ckpt-%d: %s", ref.step, "; ".join(problems))
    return None


def read_checkpoint(prefix: str, expected: dict[str, tuple[tuple[int, ...], str]], *, verify: bool = True) -> dict:
    """Read the named tensors as numpy arrays, checking that each exists with its shape.

    ``expected`` maps names to ``(shape, dtype name)``; a missing tensor or a
    shape that differs (a checkpoint of another model size) is a
    CheckpointError that names the tensor, both shapes and the checkpoint.
    ``verify=False`` skips hashing the files again when the caller just did.
    """
    import tensorflow as tf

    problems = verify_checkpoint(prefix) if verify else []
    if problems:
        raise CheckpointError(f"checkpoint {prefix} is damaged: {'; '.join(problems)}")
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    values = {}
    for name, (shape, _dtype) in expected.items():
        if name not in shapes:
            raise CheckpointError(
                f"checkpoint {prefix} has no tensor {name}; expected a checkpoint of this model and training "
                "setup (a different model config or NSP setting needs a new run_name)"
            )
        if tuple(shapes[name]) != tuple(shape):
            raise CheckpointError(
                f"checkpoint {prefix}: {name} has shape {list(shapes[name])}, the model expects {list(shape)}; "
                "the model config differs from the one the checkpoint was trained with"
            )
        values[name] = reader.get_tensor(name)
    return values


def link_segment_end(ref: CheckpointRef) -> None:
    """Hard-link a segment's final checkpoint into .segment-ends/ (copy if links fail)."""
    directory = os.path.dirname(ref.prefix)
    backup_dir = os.path.join(directory, SEGMENT_ENDS_DIR)
    os.makedirs(backup_dir, exist_ok=True)
    for suffix in (DATA_SUFFIX, MANIFEST_SUFFIX, INDEX_SUFFIX):
        source = ref.prefix + suffix
        target = os.path.join(backup_dir, os.path.basename(ref.prefix) + suffix)
        if not os.path.exists(source) or os.path.exists(target):
            continue
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def republish(ref: CheckpointRef, directory: str) -> CheckpointRef:
    """Put a checkpoint from .segment-ends/ back under its name in ``directory``."""
    target_prefix = checkpoint_prefix(directory, ref.step)
    if ref.prefix == target_prefix:
        return ref
    for suffix in (DATA_SUFFIX, MANIFEST_SUFFIX, INDEX_SUFFIX):
        source, target = ref.prefix + suffix, target_prefix + suffix
        if os.path.exists(source) and not os.path.exists(target):
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
    _write_checkpoint_state(directory, ref.step)
    return CheckpointRef(ref.step, target_prefix)


def prune_checkpoints(directory: str, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` intermediate checkpoints; return the steps deleted.

    Segment-end checkpoints (those linked in .segment-ends/) are never deleted.
    """
    ends = {ref.step for ref in list_checkpoints(os.path.join(directory, SEGMENT_ENDS_DIR), False)}
    intermediates = [
        ref for ref in list_checkpoints(directory, include_segment_ends=False) if ref.step not in ends
    ]
    deleted = []
    for ref in intermediates[: max(0, len(intermediates) - keep)]:
        # Index first: a half-deleted checkpoint must not look complete.
        for suffix in (INDEX_SUFFIX, MANIFEST_SUFFIX, DATA_SUFFIX):
            try:
                os.unlink(ref.prefix + suffix)
            except FileNotFoundError:
                pass
        deleted.append(ref.step)
    if deleted:
        newest = list_checkpoints(directory, include_segment_ends=False)
        if newest:
            _write_checkpoint_state(directory, newest[-1].step)
    return deleted


def read_optional(prefix: str, names: list[str]) -> dict:
    """Read those of ``names`` that the checkpoint has (state added by later versions)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    present = reader.get_variable_to_shape_map()
    return {name: reader.get_tensor(name) for name in names if name in present}
