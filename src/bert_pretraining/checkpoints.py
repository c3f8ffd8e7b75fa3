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

Each segment's final checkpoint is also copied into ``.segment-ends/`` (a
copy, verified against the manifest, not a hard link: a link would share the
damage of a cut or corrupted file). Snakemake deletes a failed job's declared
outputs (a TIMEOUT after the final save, for example), and the copy keeps the
data; a damaged final checkpoint is repaired from it (``recover_checkpoint``).
Damaged files are moved into ``.damaged/``, never deleted.
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
from .run_layout import (  # noqa: F401 (the names of a checkpoint's files, read here by the other modules)
    CHECKPOINT_STATE,
    DAMAGED_DIR,
    DATA_SUFFIX,
    INDEX_SUFFIX,
    MANIFEST_SUFFIX,
    SEGMENT_ENDS_DIR,
    checkpoint_name,
)

log = logging.getLogger(__name__)

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
    return os.path.join(directory, checkpoint_name(step))


def step_of(prefix: str) -> int:
    """The global step in a prefix such as ``.../model.ckpt-260000``."""
    match = re.search(r"model\.ckpt-(\d+)$", prefix)
    if not match:
        raise CheckpointError(f"{prefix}: expected a checkpoint prefix of the form model.ckpt-<step>")
    return int(match.group(1))


def segment_end_copy(prefix: str) -> str:
    """Where the .segment-ends/ copy of the checkpoint ``prefix`` (in its phase directory) lives."""
    return os.path.join(os.path.dirname(prefix), SEGMENT_ENDS_DIR, os.path.basename(prefix))


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


def save_checkpoint(directory: str, step: int, tensors: dict, inputs: dict | None = None) -> CheckpointRef:
    """Write ``tensors`` (name -> tensor or variable) as model.ckpt-<step>, atomically.

    ``inputs``: the digests of what the weights were trained on (run_inputs), kept in the manifest.
    """
    import tensorflow as tf

    os.makedirs(directory, exist_ok=True)
    _remove_stale_saves(directory)
    staging = os.path.join(directory, f".saving-{step}-{os.getpid()}")
    os.makedirs(staging)
    try:
        staged_prefix = checkpoint_prefix(staging, step)
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
            **({"inputs": inputs} if inputs else {}),
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
    lines = [f'model_checkpoint_path: "{checkpoint_name(newest)}"']
    lines += [f'all_model_checkpoint_paths: "{checkpoint_name(s)}"' for s in steps]
    with AtomicFile(os.path.join(directory, CHECKPOINT_STATE)) as out:
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


def read_manifest(prefix: str) -> dict | None:
    """A checkpoint's manifest (None: none, as for checkpoints of other tools, or unreadable)."""
    try:
        manifest = read_json(prefix + MANIFEST_SUFFIX)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def verify_checkpoint(prefix: str, *, hash_files: bool = True) -> list[str]:
    """Problems found in a checkpoint's files; an empty list means it is intact.

    Checkpoints written by other tools have no manifest: they are accepted when
    both files exist and TensorFlow can read the index. ``hash_files=False``
    compares sizes only (seconds saved per gigabyte; finds cut files, not flipped bits).
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
            elif hash_files and file_sha256(path) != entry["sha256"]:
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
    interval, not the run. A damaged segment end is read from its .segment-ends/
    copy if that is intact (nothing is moved here: recover_checkpoint repairs).
    """
    for ref in reversed(list_checkpoints(directory)):
        if (min_step is not None and ref.step < min_step) or (max_step is not None and ref.step > max_step):
            continue
        main = checkpoint_prefix(directory, ref.step)
        for prefix in (main, segment_end_copy(main)):
            if not os.path.exists(prefix + INDEX_SUFFIX):
                continue
            problems = verify_checkpoint(prefix)
            if not problems:
                return CheckpointRef(ref.step, prefix)
            log.warning("skipping damaged checkpoint %s: %s", prefix, "; ".join(problems))
    return None


def recover_checkpoint(prefix: str, *, hash_files: bool = True) -> CheckpointRef | None:
    """The intact checkpoint ``prefix`` (a segment's final one), repaired from its .segment-ends/ copy if damaged.

    - intact: returned as it is;
    - not published under its name (no index: Snakemake deleted a failed job's
      outputs, or a save is under way): nothing is moved, and the copy is
      returned if intact (the segment's rerun republishes it);
    - damaged, copy intact: the damaged files go into .damaged/ and the copy is
      republished under the name with its modification time, so Snakemake sees
      nothing changed and reruns nothing;
    - damaged, no intact copy: both go into .damaged/ and None is returned: the
      declared output is missing, so Snakemake reruns that segment, which
      resumes from its newest intact checkpoint.

    Nothing is deleted. ``hash_files=False`` compares sizes only: cheap enough
    for every workflow start, and it finds cut files.
    """
    step = step_of(prefix)
    problems = verify_checkpoint(prefix, hash_files=hash_files)
    if not problems:
        return CheckpointRef(step, prefix)
    copy = segment_end_copy(prefix)
    copy_problems = verify_checkpoint(copy, hash_files=hash_files)
    if not os.path.exists(prefix + INDEX_SUFFIX):
        return None if copy_problems else CheckpointRef(step, copy)
    directory = os.path.dirname(prefix)
    moved = _set_aside(prefix)
    if not copy_problems:
        _copy_checkpoint(copy, prefix, hash_files=hash_files)
        _write_checkpoint_state(directory, step)
        log.warning(
            "skipping damaged checkpoint %s: %s; its files were moved to %s and its intact copy in %s/ "
            "was put back under its name (same modification time: Snakemake reruns nothing)",
            prefix, "; ".join(problems), moved, SEGMENT_ENDS_DIR,
        )
        return CheckpointRef(step, prefix)
    moved_copy = _set_aside(copy)
    _write_checkpoint_state(directory, step)
    log.warning(
        "skipping damaged checkpoint %s: %s; its copy in %s/ is not intact either (%s); moved to %s%s. "
        "Snakemake will rerun the segment that ends at step %d; it resumes from the newest intact checkpoint "
        "before it and, training being deterministic, ends with the same model",
        prefix, "; ".join(problems), SEGMENT_ENDS_DIR, "; ".join(copy_problems), moved,
        f" and {moved_copy}" if moved_copy else "", step,
    )
    return None


def recovered_prefix(path: str) -> str:
    """The prefix to read for a checkpoint given as a prefix or one of its files, repaired if damaged.

    Unchanged when it cannot be repaired: the reader then says what is missing
    (recover_checkpoint has logged what it set aside and why).
    """
    prefix = normalize_prefix(path)
    ref = recover_checkpoint(prefix)
    return ref.prefix if ref else prefix


def _existing_files(prefix: str) -> list[str]:
    """The checkpoint's files that exist, index first (a half-moved checkpoint must not look complete)."""
    return [prefix + suffix for suffix in (INDEX_SUFFIX, MANIFEST_SUFFIX, DATA_SUFFIX) if os.path.exists(prefix + suffix)]


def _set_aside(prefix: str) -> str | None:
    """Move a damaged checkpoint's files into <phase dir>/.damaged/<name>-<n>/; return that directory.

    Moved, not deleted: nothing that exists is lost, and the name under which
    it was published is free for an intact checkpoint.
    """
    files = _existing_files(prefix)
    if not files:
        return None
    directory = os.path.dirname(prefix)
    name = os.path.basename(prefix)
    if os.path.basename(directory) == SEGMENT_ENDS_DIR:
        directory, name = os.path.dirname(directory), f"{name}.segment-end-copy"
    number = 1
    while True:
        target = os.path.join(directory, DAMAGED_DIR, f"{name}-{number}")
        try:
            os.makedirs(target)
            break
        except FileExistsError:
            number += 1
    for path in files:
        try:
            os.rename(path, os.path.join(target, os.path.basename(path)))
        except FileNotFoundError:
            pass  # another process moved it first
    _fsync_directory(os.path.dirname(prefix))
    return target


def _copy_checkpoint(source: str, target: str, *, hash_files: bool = True) -> None:
    """Copy a checkpoint's files, modification times kept, index last; verify the copy against the manifest.

    The times matter: Snakemake compares those of declared outputs, and a
    republished final checkpoint must not look newer than what was trained from
    it. (A copy's time is the save's; Snakemake touches a job's outputs a moment
    later, so a republished checkpoint is a little older than it was: harmless.)
    """
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    for suffix in (DATA_SUFFIX, MANIFEST_SUFFIX, INDEX_SUFFIX):
        if not os.path.exists(source + suffix):
            continue  # checkpoints of other tools have no manifest
        temporary = os.path.join(directory, f".{os.path.basename(target)}{suffix}.copying-{os.getpid()}")
        shutil.copy2(source + suffix, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        _replace(temporary, target + suffix)
    _fsync_directory(directory)
    problems = verify_checkpoint(target, hash_files=hash_files)
    if problems:
        moved = _set_aside(target)
        raise CheckpointError(
            f"the copy of checkpoint {source} at {target} does not match its manifest: {'; '.join(problems)} "
            f"(moved to {moved}); expected an identical copy: is the disk full or failing?"
        )


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


def copy_segment_end(ref: CheckpointRef) -> None:
    """Copy a segment's final checkpoint into .segment-ends/ and verify the copy.

    A copy already there is kept if it is intact and not a hard link to the
    same files (as runs of earlier versions made them).
    """
    copy = segment_end_copy(ref.prefix)
    if os.path.exists(copy + INDEX_SUFFIX) and not _same_files(ref.prefix, copy) and not verify_checkpoint(copy):
        return
    _copy_checkpoint(ref.prefix, copy)


def _same_files(prefix: str, other: str) -> bool:
    try:
        return os.path.samefile(prefix + DATA_SUFFIX, other + DATA_SUFFIX)
    except OSError:
        return False


def republish(ref: CheckpointRef, directory: str) -> CheckpointRef:
    """Put a checkpoint from .segment-ends/ back under its name in ``directory`` (a copy, times kept)."""
    target_prefix = checkpoint_prefix(directory, ref.step)
    if ref.prefix == target_prefix:
        return ref
    _copy_checkpoint(ref.prefix, target_prefix)
    _write_checkpoint_state(directory, ref.step)
    return CheckpointRef(ref.step, target_prefix)


def prune_checkpoints(directory: str, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` intermediate checkpoints; return the steps deleted.

    Segment-end checkpoints (those copied in .segment-ends/) are never deleted.
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
