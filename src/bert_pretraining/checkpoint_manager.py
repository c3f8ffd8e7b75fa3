"""One training segment's checkpoints: where it starts, its saves, its published end.

The training loop's one door to checkpoints, as ``tf.train.CheckpointManager``
is TensorFlow's: ``restore_or_initialize`` before the first step, ``save`` at
intervals and on a stop request, ``finish`` at the segment's end. How a
checkpoint is written, verified, linked and pruned on disk is checkpoints.py's.

The state is a ``training.TrainingState``: ``tensors_by_name()`` (everything a
checkpoint holds), ``model.variables_by_name``, ``global_step`` and
``input_position``. Rank 0 alone writes; ``finish`` waits for every rank.
"""

from __future__ import annotations

import logging
import os

from . import checkpoints
from .errors import CheckpointError
from .replica import Replica
from .run_inputs import check_checkpoint_inputs
from .source_model import SourceModel, read_weights

log = logging.getLogger(__name__)

# State that older checkpoints, or those of fp32 runs (no loss scale), lack:
# restoring them leaves its initial value.
OPTIONAL_TENSORS = ("loss_scale", "loss_scale_good_steps", "skipped_steps")


class CheckpointManager:
    """The checkpoints of the segment ``start_step``-``end_step`` in ``directory``.

    ``init_checkpoint`` is the previous segment's final checkpoint (of this
    phase or the previous one); ``init_from`` the released model the run's
    first segment starts from.
    """

    def __init__(
        self,
        directory: str,
        *,
        keep: int,
        start_step: int,
        end_step: int,
        replica: Replica,
        init_checkpoint: str | None = None,
        init_from: SourceModel | None = None,
        use_next_sentence_prediction: bool = True,
        inputs: dict | None = None,
    ):
        self.directory = directory
        self.keep = keep
        self.start_step = start_step
        self.end_step = end_step
        self.replica = replica
        self.init_checkpoint = init_checkpoint
        self.init_from = init_from
        self.use_next_sentence_prediction = use_next_sentence_prediction
        # What this segment trains on (run_inputs): recorded in each save, checked in each restore.
        self.inputs = inputs or {}

    @classmethod
    def for_segment(cls, settings, replica: Replica) -> "CheckpointManager":
        """The manager of a ``training.SegmentSettings``' segment."""
        return cls(
            settings.output_dir, keep=settings.keep_checkpoints, start_step=settings.start_step,
            end_step=settings.end_step, replica=replica, init_checkpoint=settings.init_checkpoint,
            init_from=settings.init_from, use_next_sentence_prediction=settings.use_next_sentence_prediction,
            inputs=settings.inputs,
        )

    def restore_or_initialize(self, state) -> str:
        """Restore where this segment should start; return a sentence saying from where.

        1. The newest intact checkpoint of this phase within the segment (a rerun
           after a failure, a timeout or a kill resumes there, input position too).
        2. Else ``init_checkpoint``: the previous segment's final checkpoint; from
           the previous phase, the input position restarts at 0 (new records).
           A damaged one is repaired from its .segment-ends/ copy
           (checkpoints.recover_checkpoint).
        3. Else, for the run's first segment, the weights of ``init_from`` (a
           released model; its missing heads and the optimizer start fresh, at
           step 0), or fresh weights.
        """
        # The checkpoint at start_step is the previous segment's final one: given as
        # init_checkpoint, it is read below, where a damaged one is repaired.
        first = self.start_step + 1 if self.init_checkpoint else self.start_step
        own = checkpoints.newest_valid_checkpoint(self.directory, min_step=first, max_step=self.end_step)
        if own is not None:
            check_checkpoint_inputs(own.prefix, self.inputs)
            self._restore(state, own.prefix, keep_input_position=True)
            return f"resuming from {own.prefix} (step {own.step})"
        if self.init_checkpoint:
            prefix = checkpoints.normalize_prefix(self.init_checkpoint)
            same_phase = os.path.realpath(os.path.dirname(prefix)) == os.path.realpath(self.directory)
            previous = checkpoints.recover_checkpoint(prefix)
            if previous is None:
                raise CheckpointError(
                    f"--init_checkpoint {prefix} cannot be used: neither it nor its copy in "
                    f"{checkpoints.SEGMENT_ENDS_DIR}/ is intact; expected the previous segment's final checkpoint "
                    "(run the workflow again: it retrains that segment)"
                )
            prefix = previous.prefix
            check_checkpoint_inputs(prefix, self.inputs, same_phase=same_phase)
            self._restore(state, prefix, keep_input_position=same_phase)
            return f"initialised from {prefix}"
        if self.start_step == 0 and self.init_from is not None:
            weights = read_weights(self.init_from, self.use_next_sentence_prediction)
            for name, value in weights.items():
                state.model.variables_by_name[name].assign(value)
            fresh = sorted(set(state.model.variables_by_name) - set(weights))
            return f"initialised from the weights of {self.init_from.directory}" + (
                f"; fresh: {', '.join(fresh)}" if fresh else ""
            )
        if self.start_step == 0:
            return "starting from freshly initialised weights"
        raise CheckpointError(
            f"segment {self.start_step}-{self.end_step}: no checkpoint in {self.directory} "
            "and no --init_checkpoint; expected the previous segment's final checkpoint"
        )

    def save(self, state) -> checkpoints.CheckpointRef | None:
        """Rank 0: write the state at its global step and prune old steps (other ranks: nothing)."""
        if not self.replica.is_chief:
            return None
        ref = checkpoints.save_checkpoint(
            self.directory, int(state.global_step.numpy()), state.tensors_by_name(), inputs=self.inputs
        )
        deleted = checkpoints.prune_checkpoints(self.directory, self.keep)
        log.info("saved %s%s", ref.prefix, f" (removed old steps {deleted})" if deleted else "")
        return ref

    def finish(self, state) -> None:
        """Publish the final checkpoint (the rule's output) and its .segment-ends copy; wait for all ranks.

        A final checkpoint already written (by a run that was then killed, or
        kept only as its copy after Snakemake deleted the outputs of a failed
        job) is republished, not written again.
        """
        if self.replica.is_chief:
            existing = checkpoints.recover_checkpoint(checkpoints.checkpoint_prefix(self.directory, self.end_step))
            ref = checkpoints.republish(existing, self.directory) if existing else self.save(state)
            checkpoints.copy_segment_end(ref)
            checkpoints.prune_checkpoints(self.directory, self.keep)
            log.info("segment finished at step %d: %s", self.end_step, ref.prefix)
        self.replica.barrier()  # the segment's output exists when any rank reports success

    def _restore(self, state, prefix: str, *, keep_input_position: bool) -> None:
        """Load a checkpoint that was just verified; state it lacks (OPTIONAL_TENSORS) keeps its value."""
        tensors = state.tensors_by_name()
        wanted = {
            name: (tuple(variable.shape), variable.dtype.name)
            for name, variable in tensors.items()
            if name not in OPTIONAL_TENSORS
        }
        values = checkpoints.read_checkpoint(prefix, wanted, verify=False)
        optional = checkpoints.read_optional(prefix, list(OPTIONAL_TENSORS))
        values.update({name: value for name, value in optional.items() if name in tensors})
        for name, variable in tensors.items():
            if name in values:
                variable.assign(values[name])
        if not keep_input_position:
            state.input_position.assign(0)
