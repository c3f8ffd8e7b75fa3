"""What training tells the user: log lines, metrics.jsonl and TensorBoard events.

Every ``log_every_steps`` global steps the chief writes one line with loss,
accuracies, learning rate, loss scale, throughput and the estimated time to
the segment's and the run's end, appends the same figures to
``<phase dir>/metrics.jsonl`` (read by the status command and the report) and
writes TensorBoard scalars under ``<phase dir>/tensorboard``. Metrics are
averaged over the steps since the last line; they are summed on the device,
so logging costs no extra host-device round trip per step. Which metrics are
averaged and which go to TensorBoard, under which names: ``metrics.TABLE``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
import tensorflow as tf

from .flops import device_peak, flops_per_sequence
from .metrics import TENSORBOARD, TRAINING, names_shown_in
from .progress import format_duration
from .run_layout import METRICS_FILE, TENSORBOARD_DIR, TRAINING_LOG_FILE

log = logging.getLogger("bert_pretraining.training")

AVERAGED = names_shown_in(TRAINING)


def _device_name() -> str | None:
    """The GPU's model name (for its peak FLOP/s), None on a machine without one."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    try:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name")
    except (AttributeError, ValueError):
        return None


def _keep_history(output_dir: str) -> None:
    """Also append this package's log lines to <phase dir>/training.log.

    Snakemake replaces a job's log when it reruns the job; this file keeps
    every attempt (the kill, the resume, the timeout) in one place.
    """
    path = os.path.abspath(os.path.join(output_dir, TRAINING_LOG_FILE))
    package_logger = logging.getLogger("bert_pretraining")
    if any(getattr(handler, "baseFilename", None) == path for handler in package_logger.handlers):
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    package_logger.addHandler(handler)


def _summary_writer(directory: str):
    """TensorBoard's writer; a directory it may not write is the PermissionError run_main explains."""
    try:
        return tf.summary.create_file_writer(directory)
    except tf.errors.PermissionDeniedError as error:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), directory) from error


class TrainingLog:
    def __init__(self, settings, replica, start_step: int):
        self.settings = settings
        self.replica = replica
        self.phase = os.path.basename(os.path.normpath(settings.output_dir))
        self.step_advanced = False
        self._last_step = start_step
        self._reset(start_step)
        self._writer = None
        config = settings.bert_config
        self.flops_per_sequence = flops_per_sequence(
            hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_hidden_layers, vocab_size=config.vocab_size,
            seq_length=settings.max_seq_length, predictions=settings.max_predictions_per_seq,
            next_sentence=settings.use_next_sentence_prediction,
        )
        device = _device_name()
        self.peak_tflops, peak_source = device_peak(device, settings.precision)
        if replica.is_chief:
            peak = f"peak {self.peak_tflops:g} TFLOP/s per device ({peak_source})" if self.peak_tflops else peak_source
            log.info("Device: %s x %d ranks; %s", device or "CPU", replica.size, peak)
            _keep_history(settings.output_dir)
            self._writer = _summary_writer(os.path.join(settings.output_dir, TENSORBOARD_DIR))
            self._metrics_path = os.path.join(settings.output_dir, METRICS_FILE)

    def _reset(self, step: int) -> None:
        self._sums = {}
        self._count = 0
        self._window_start = time.perf_counter()
        self._window_first_step = step
        self._window_batches = 0

    def add(self, metrics: dict) -> None:
        """Account for one step call (sums stay on the device: no wait for it)."""
        self._count += 1
        self._window_batches += 1
        for name in AVERAGED:
            if name in metrics:
                self._sums[name] = self._sums.get(name, 0.0) + tf.cast(metrics[name], tf.float32)
        self._last = metrics

    def after_step(self, step: int, state) -> bool:
        """At a reading of the global step: write a line when one is due; True when written (last_loss is fresh)."""
        self.step_advanced = step > self._last_step
        self._last_step = step
        due = self.step_advanced and step % self.settings.log_every_steps == 0
        if due or step >= self.settings.end_step:
            self._write(step, state)
            self._reset(step)
            return True
        return False

    def _write(self, step: int, state) -> None:
        elapsed = time.perf_counter() - self._window_start
        steps_done = step - self._window_first_step
        global_batch = self.settings.train_batch_size * self.replica.size
        sequences_per_second = self._window_batches * global_batch / elapsed if elapsed > 0 else 0.0
        steps_per_second = steps_done / elapsed if elapsed > 0 else 0.0
        record = {name: float(value.numpy()) / self._count for name, value in self._sums.items()}
        self.last_loss = record.get("loss", float("nan"))
        record.update(
            time=time.time(),
            phase=self.phase,
            step=step,
            segment_start=self.settings.start_step,
            segment_end=self.settings.end_step,
            run_last_step=self.settings.run_last_step,
            learning_rate=float(self._last["learning_rate"].numpy()),
            loss_scale=float(state.loss_scale.loss_scale.numpy()) if state.loss_scale else 1.0,
            skipped_steps=int(state.skipped_steps.numpy()),
            sequences_per_second=sequences_per_second,
            tokens_per_second=sequences_per_second * self.settings.max_seq_length,
            steps_per_second=steps_per_second,
            model_tflops=self.flops_per_sequence * sequences_per_second / 1e12,
            eta_segment_seconds=(self.settings.end_step - step) / steps_per_second if steps_per_second else None,
            eta_run_seconds=(self.settings.run_last_step - step) / steps_per_second if steps_per_second else None,
        )
        if self.peak_tflops:
            record["mfu"] = record["model_tflops"] / (self.replica.size * self.peak_tflops)
        if not self.replica.is_chief:
            return
        mfu = f" MFU {record['mfu']:.1%}" if "mfu" in record else ""
        log.info(
            "step %d/%d | loss %.4f mlm_acc %.4f nsp_acc %s | lr %.3g | scale %g | skipped %d | "
            "%.1f seq/s %.0f tok/s %.2f TFLOP/s%s | ETA segment %s, run %s",
            step, self.settings.end_step, record.get("loss", float("nan")), record.get("masked_lm_accuracy", 0.0),
            f"{record['next_sentence_accuracy']:.4f}" if "next_sentence_accuracy" in record else "-",
            record["learning_rate"], record["loss_scale"], record["skipped_steps"],
            sequences_per_second, record["tokens_per_second"], record["model_tflops"], mfu,
            format_duration(record["eta_segment_seconds"]),
            format_duration(record["eta_run_seconds"]),
        )
        with open(self._metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        with self._writer.as_default(step=step):
            for name in names_shown_in(TENSORBOARD):
                if name in record:
                    tf.summary.scalar(name, record[name])
        self._writer.flush()
