"""One training segment: restore, run steps from start_step to end_step, save.

The loop (``train_segment``) fits on a screen; the pieces it uses are below
it: the training state (everything a checkpoint holds), the compiled step,
and the stop request raised by SLURM's pre-timeout signal or SIGTERM. Where
the segment starts, its saves and its published end are the
CheckpointManager's (checkpoint_manager.py).
"""

from __future__ import annotations

import dataclasses
import logging
import signal

import tensorflow as tf

from .checkpoint_manager import CheckpointManager
from .errors import CheckpointError
from .inputs import pretraining_dataset
from .modeling import COMPUTE_DTYPES, BertConfig, BertPretrainer, pretraining_loss
from .replica import Replica
from .schema import job_settings_class
from .source_model import SourceModel
from .optimization import DynamicLossScale, clip_by_global_norm, optimizer_from_settings
from .schedule import learning_rate_tensor
from .divergence import DivergenceGuard
from .host_step import HostStep
from .training_log import TrainingLog
from .watchdog import HangWatchdog

log = logging.getLogger(__name__)

EXIT_STOPPED = 75  # EX_TEMPFAIL: stopped on request with a checkpoint; rerun to continue


# What one segment job needs: its files and steps, then every setting of the
# train job (the schema's x-jobs), named by run_pretraining.py's flags. The
# global batch is train_batch_size x ranks x gradient_accumulation_steps.
SegmentSettings = job_settings_class(
    "SegmentSettings",
    "train",
    leading=[
        ("bert_config", BertConfig),
        ("input_files", list),
        ("records_per_file", dict),
        # The digests of the vocabulary, model config and records (run_inputs.training_inputs).
        ("inputs", dict),
        ("output_dir", str),
        ("init_checkpoint", str | None),
        # The model the run continues from (init_from): the first segment starts from its weights.
        ("init_from", SourceModel | None),
        ("start_step", int),
        ("end_step", int),
        ("run_last_step", int),
    ],
    doc="What one segment job needs; segment_job.py builds it from run_pretraining.py's flags.",
)


class TrainingState(tf.Module):
    """Everything a checkpoint holds, by Google-style name.

    Model weights, Adam moments (``<name>/adam_m``, ``<name>/adam_v``), the
    global step, the loss scale and the input position (batches each rank has
    consumed in this phase; micro-batches under gradient accumulation), so
    that a restart continues exactly. Every rank consumes the same number of
    batches per step, so one input position serves all ranks.
    """

    def __init__(self, settings: SegmentSettings):
        super().__init__(name="training_state")
        self.model = BertPretrainer(
            settings.bert_config,
            use_next_sentence_prediction=settings.use_next_sentence_prediction,
            seed=settings.seed,
        )
        self.optimizer = optimizer_from_settings(settings, self.model.variables_by_name)
        self.loss_scale = DynamicLossScale() if settings.precision == "fp16" else None
        self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.input_position = tf.Variable(0, dtype=tf.int64, trainable=False, name="input_position")
        self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")

    def tensors_by_name(self) -> dict:
        tensors = dict(self.model.variables_by_name)
        tensors.update(self.optimizer.slots_by_name)
        if self.loss_scale is not None:
            tensors.update(self.loss_scale.variables_by_name)
        tensors.update(
            global_step=self.global_step,
            input_position=self.input_position,
            skipped_steps=self.skipped_steps,
        )
        return tensors


def make_train_step(state: TrainingState, settings: SegmentSettings, replica: Replica):
    """The compiled step: forward, loss, gradients, clipping, Adam, step += 1.

    Returns ``train_step(micro_batches, dropout_seeds)`` taking a list of
    ``gradient_accumulation_steps`` batches (and one dropout seed each) and
    returning the step's metrics.

    A step whose gradients are not finite (fp16 overflow) changes no weight and
    does not advance the global step; it is counted in ``skipped_steps``.

    One process without accumulation compiles the whole step as one XLA
    function. Otherwise the step is three compiled functions: the first
    micro-batch's gradients, each further micro-batch's gradients added to
    the running sum (of loss / k, so the sum is the mean), and the update;
    the ranks' all-reduce runs between the last two (XLA does not compile
    collectives). The averaged metrics are all-reduced with the gradients,
    in the same collective, so the logged loss is the global batch's.
    """
    compute_dtype = COMPUTE_DTYPES[settings.precision]
    variables = list(state.model.variables_by_name.values())
    base_lr = settings.learning_rate * (replica.size if settings.scale_learning_rate_by_ranks else 1)
    accumulation = settings.gradient_accumulation_steps

    def gradients(features, dropout_seed):
        with tf.GradientTape() as tape:
            mlm_logits, nsp_logits = state.model(
                features["input_ids"], features["input_mask"], features["segment_ids"],
                features["masked_lm_positions"], training=True, dropout_seed=dropout_seed,
                compute_dtype=compute_dtype,
            )
            loss, metrics = pretraining_loss(
                mlm_logits, nsp_logits, features["masked_lm_ids"], features["masked_lm_weights"],
                features["next_sentence_labels"],
            )
            objective = loss if accumulation == 1 else loss * (1.0 / accumulation)
            scaled_loss = state.loss_scale.scale(objective) if state.loss_scale else objective
        grads = tape.gradient(scaled_loss, variables)
        return loss, metrics, grads

    def accumulate(features, dropout_seed, running):
        loss, metrics, grads = gradients(features, dropout_seed)
        summed = [None if total is None else total + grad for total, grad in zip(running, grads)]
        return loss, metrics, summed

    def apply(grads):
        if state.loss_scale is not None:
            grads = state.loss_scale.unscale(grads)
        clipped, grad_norm = clip_by_global_norm(grads, 1.0)
        # Any NaN or Inf gradient makes the global norm non-finite: one scalar
        # check instead of a pass over every gradient.
        finite = tf.math.is_finite(grad_norm)
        if state.loss_scale is not None:
            state.loss_scale.adjust(finite)
        lr = learning_rate_tensor(
            state.global_step, base_learning_rate=base_lr,
            num_train_steps=settings.num_train_steps, num_warmup_steps=settings.num_warmup_steps,
        )
        state.optimizer.apply_gradients(clipped, lr, should_apply=finite, step=state.global_step)
        state.global_step.assign_add(tf.cast(finite, tf.int64))
        state.skipped_steps.assign_add(1 - tf.cast(finite, tf.int64))
        state.input_position.assign_add(accumulation)
        return lr, grad_norm, finite

    def step(features, dropout_seed):
        loss, metrics, grads = gradients(features, dropout_seed)
        lr, grad_norm, finite = apply(grads)
        return {"loss": loss, "learning_rate": lr, "grad_norm": grad_norm, "finite": finite, **metrics}

    if replica.size == 1 and accumulation == 1:
        compiled_step = tf.function(step, jit_compile=settings.use_xla)

        def single_step(micro_batches, dropout_seeds):
            return compiled_step(micro_batches[0], dropout_seeds[0])

        return single_step
    compiled_gradients = tf.function(gradients, jit_compile=settings.use_xla)
    compiled_accumulate = tf.function(accumulate, jit_compile=settings.use_xla)
    compiled_apply = tf.function(apply, jit_compile=settings.use_xla)

    def split_step(micro_batches, dropout_seeds):
        if len(micro_batches) != accumulation:
            raise ValueError(f"got {len(micro_batches)} micro-batches for gradient_accumulation_steps {accumulation}")
        loss, metrics, grads = compiled_gradients(micro_batches[0], dropout_seeds[0])
        totals = {"loss": loss, **metrics}
        for features, dropout_seed in zip(micro_batches[1:], dropout_seeds[1:]):
            loss, metrics, grads = compiled_accumulate(features, dropout_seed, grads)
            for name, value in {"loss": loss, **metrics}.items():
                totals[name] = totals[name] + value
        if accumulation > 1:
            totals = {name: value / accumulation for name, value in totals.items()}
        grads, totals = replica.allreduce_gradients(grads, totals)
        lr, grad_norm, finite = compiled_apply(grads)
        return {"learning_rate": lr, "grad_norm": grad_norm, "finite": finite, **totals}

    return split_step


def dropout_seeds(state: TrainingState, settings: SegmentSettings, replica: Replica) -> list:
    """One seed per micro-batch: (phase, batch number across ranks), distinct on every rank.

    For one process it is (phase, input position), as before data parallelism.
    """
    phase_seed = tf.constant(settings.seed * 1000 + settings.max_seq_length % 1000, tf.int64)
    position = state.input_position.read_value()
    return [
        tf.stack([phase_seed, (position + index) * replica.size + replica.rank])
        for index in range(settings.gradient_accumulation_steps)
    ]


class StopRequest:
    """Set by SIGTERM, SIGINT or SIGUSR1 (SLURM's --signal before the time limit)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)

    def __init__(self):
        self.signal_name = None
        for sig in self.SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        self.signal_name = signal.Signals(signum).name

    def __bool__(self):
        return self.signal_name is not None


def train_segment(settings: SegmentSettings, replica: Replica) -> int:
    """Train from start_step to end_step; return the process exit status."""
    stop = StopRequest()
    state = TrainingState(settings)
    checkpoints = CheckpointManager.for_segment(settings, replica)
    how = checkpoints.restore_or_initialize(state)
    replica.broadcast_variables(list(state.tensors_by_name().values()))
    step = int(state.global_step.numpy())
    log.info("segment %d-%d of phase %s: %s", settings.start_step, settings.end_step, settings.output_dir, how)
    if step >= settings.end_step:
        checkpoints.finish(state)
        return 0
    if step < settings.start_step:
        raise CheckpointError(f"restored step {step} is before the segment's start {settings.start_step}")

    dataset = pretraining_dataset(
        settings.input_files, settings.records_per_file, batch_size=settings.train_batch_size,
        max_seq_length=settings.max_seq_length, max_predictions_per_seq=settings.max_predictions_per_seq,
        seed=settings.seed, start_batch=int(state.input_position.numpy()), rank=replica.rank,
        num_ranks=replica.size,
    )
    train_step = make_train_step(state, settings, replica)
    accumulation = settings.gradient_accumulation_steps
    # The log's throughput counts sequences per optimizer step and rank.
    training_log = TrainingLog(
        dataclasses.replace(settings, train_batch_size=settings.train_batch_size * accumulation), replica, step
    )
    batches = iter(dataset)  # endless
    watchdog = HangWatchdog(settings.hang_timeout_seconds).start()
    divergence = DivergenceGuard(patience=settings.divergence_patience)
    host_step = HostStep(
        step, end_step=settings.end_step, intervals=(settings.log_every_steps, settings.save_checkpoints_steps)
    )
    while True:
        micro_batches = [next(batches) for _ in range(accumulation)]
        metrics = train_step(micro_batches, dropout_seeds(state, settings, replica))
        training_log.add(metrics)
        watchdog.beat()  # a hung device blocks the next reading, so the beats stop there
        if not host_step.after_call():
            continue
        reading = host_step.read(int(state.global_step.numpy()))
        step = reading.step
        watchdog.beat(step)
        divergence.after_reading(step, reading.advanced, reading.skipped)
        if training_log.after_step(step, state):
            divergence.check(step, training_log.last_loss)  # raises before a diverged state is saved
        if step >= settings.end_step:
            break
        # Every rank takes the same decision at the same step (a collective
        # when there are several ranks): all stop together, rank 0 saves.
        if replica.all_ranks_agree(bool(stop)):
            checkpoints.save(state)
            replica.barrier()  # nobody exits (srun --kill-on-bad-exit) before the checkpoint is written
            if replica.size > 1:
                # The first rank to exit 75 makes srun --kill-on-bad-exit send
                # SIGTERM to the others; Python's teardown would restore the
                # default handler and die of it (srun then reports 143, not
                # 75). The checkpoint is written: let every rank exit 75.
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            log.warning(
                "stopped by %s at step %d; checkpoint saved, rerun to continue",
                stop.signal_name or "a stop request on another rank", step,
            )
            return EXIT_STOPPED
        if step % settings.save_checkpoints_steps == 0 and training_log.step_advanced:
            if divergence.bad_checks or divergence.skipped_in_a_row:
                log.warning("not saving step %d: the loss was not healthy at the last log line", step)
            else:
                checkpoints.save(state)
    watchdog.stop()
    checkpoints.finish(state)
    return 0
