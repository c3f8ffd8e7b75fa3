#!/usr/bin/env python3
"""Benchmark our BERT pretraining step against TF Model Garden's, on this machine.

    .venv/bin/python benchmarks/training_step_benchmark.py                 # small model, XLA off and on
    .venv/bin/python benchmarks/training_step_benchmark.py --model base    # BERT-base (slow on CPU)
    .venv/bin/python benchmarks/training_step_benchmark.py --no-peer --xla off

Ours: ``bert_pretraining.training.make_train_step`` on a ``TrainingState``
(``BertPretrainer`` + Google's ``AdamWeightDecay``, global-norm clipping at
1.0, the warm-up/linear-decay schedule), called as ``train_segment`` calls it
(``dropout_seeds`` per step), in ``.venv`` (TensorFlow 2.21).

The peer: TF Model Garden (``tf-models-official`` 2.20.0, in its own virtual
environment ``.venv-bench`` with TensorFlow 2.20 and tf-keras, made by
``records_benchmark.py`` and reused here), as its ``MaskedLMTask`` builds and
trains it: ``networks.BertEncoder`` + ``models.BertPretrainerV2`` with the
masked-LM head and a ``next_sentence`` ``ClassificationHead``, the task's
losses (weighted masked-LM cross-entropy + next-sentence cross-entropy), the
``adamw`` optimizer of its BERT configs (``legacy_adamw.AdamWeightDecay``,
weight decay 0.01, clip-by-global-norm 1.0) under a linear warm-up +
polynomial decay schedule, one ``tf.function`` step (forward, loss,
gradients, update) like ``base_task.train_step``.

Both: the same model size, exact (erf) GELU, dropout 0.1, fp32, the same
synthetic batches (same shapes, dtypes and values: int32 features as both
readers deliver), each step followed by reading its loss on the host (what
the training loops do). Every measurement is a separate process, run one
after the other on the same machine; the first ``--warmup`` steps (tracing,
XLA compilation) are excluded. ``jit_compile`` is the XLA switch of both.

Prints a Markdown table (steps/s, tokens/s, CPU s per step, ratio ours/peer,
and the issue's goal: "not slower than the peer without XLA, faster with
it") and writes ``training_step_<model>.md`` / ``.json`` to
``results/benchmarks/training_step/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "results" / "benchmarks" / "training_step"

MODELS = {
    # BERT-small-ish: a step takes about a second on two CPU cores.
    "small": dict(layers=4, hidden=256, heads=4, intermediate=1024),
    "base": dict(layers=12, hidden=768, heads=12, intermediate=3072),
}
DEFAULTS = dict(vocab=30522, seq=128, batch=16, predictions=20)


# --------------------------------------------------------------------------
# Shared by both workers (stdlib + numpy + TensorFlow only)
# --------------------------------------------------------------------------


def synthetic_batches(cfg: dict, count: int = 4) -> list[dict]:
    """``count`` batches as the record readers deliver them (int32 ids, float32 weights)."""
    import numpy as np

    rng = np.random.default_rng(12345)
    b, s, p, vocab = cfg["batch"], cfg["seq"], cfg["predictions"], cfg["vocab"]
    batches = []
    for _ in range(count):
        lengths = rng.integers(s // 2, s + 1, size=b)
        mask = (np.arange(s)[None, :] < lengths[:, None]).astype(np.int32)
        ids = rng.integers(5, vocab, size=(b, s), dtype=np.int32) * mask
        segments = ((np.arange(s)[None, :] >= (lengths // 2)[:, None]) * mask).astype(np.int32)
        positions = np.zeros((b, p), np.int32)
        weights = np.zeros((b, p), np.float32)
        for row, length in enumerate(lengths):
            n = min(p, max(1, int(round(0.15 * length))))
            positions[row, :n] = np.sort(rng.choice(np.arange(1, length), size=n, replace=False))
            weights[row, :n] = 1.0
        batches.append(dict(
            input_ids=ids, input_mask=mask, segment_ids=segments, masked_lm_positions=positions,
            masked_lm_ids=rng.integers(5, vocab, size=(b, p), dtype=np.int32),
            masked_lm_weights=weights,
            next_sentence_labels=rng.integers(0, 2, size=(b, 1), dtype=np.int32),
        ))
    return batches


def time_steps(run_step, warmup: int, steps: int) -> dict:
    """Run warm-up steps, then timed steps (each one's loss read on the host)."""
    started = time.perf_counter()
    first = None
    for index in range(warmup):
        float(run_step(index))
        if first is None:
            first = time.perf_counter() - started
    warmup_seconds = time.perf_counter() - started
    times = []
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    loss = None
    for index in range(warmup, warmup + steps):
        s0 = time.perf_counter()
        loss = float(run_step(index))
        times.append(time.perf_counter() - s0)
    elapsed = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return dict(
        steps=steps, warmup=warmup, first_step_seconds=first, warmup_seconds=warmup_seconds,
        # The rate is 1 / median step time: steps that another process's burst slowed down
        # (the machine is shared) move the mean, hardly the median. The mean is kept too.
        elapsed=elapsed, steps_per_second=1.0 / statistics.median(times), mean_steps_per_second=steps / elapsed,
        median_step_seconds=statistics.median(times),
        min_step_seconds=min(times), cpu_seconds_per_step=cpu / steps, last_loss=loss,
        load_average=os.getloadavg()[0],
    )


MATMUL_OPS = ("MatMul", "_MklMatMul", "_FusedMatMul", "_MklFusedMatMul", "_MklNativeFusedMatMul",
              "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "_MklBatchMatMul", "_MklBatchMatMulV2",
              "_MklFusedBatchMatMulV2", "Einsum", "_MklEinsum")


def profile_ops(run_step, first_index: int, steps: int = 2) -> dict:
    """Op time by op type over ``steps`` steps, from TensorFlow's profiler (XLA off only).

    Reads the profiler's XPlane: the ``tf_Compute`` lines of ``/host:CPU`` hold one event per
    executed op, named ``<node>:<op type>``. Ops may overlap on the inter-op threads, so the
    shares are of summed op time, not of wall time.
    """
    import glob
    import shutil

    import tensorflow as tf

    try:
        from tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # older layouts
        from tensorflow.tsl.profiler.protobuf import xplane_pb2

    logdir = tempfile.mkdtemp(prefix="bert_step_profile_")
    tf.profiler.experimental.start(logdir)
    started = time.perf_counter()
    for index in range(first_index, first_index + steps):
        float(run_step(index))
    wall = time.perf_counter() - started
    tf.profiler.experimental.stop()
    by_type: dict = {}
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as handle:
            space.ParseFromString(handle.read())
        for plane in space.planes:
            if plane.name != "/host:CPU":
                continue
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if ":" not in name or "::" in name:  # not an op ("ExecutorState::Process" wraps them)
                        continue
                    op_type = name.rsplit(":", 1)[1]
                    by_type[op_type] = by_type.get(op_type, 0.0) + event.duration_ps / 1e12 / steps
    shutil.rmtree(logdir, ignore_errors=True)
    total = sum(by_type.values())
    matmul = sum(value for name, value in by_type.items() if name in MATMUL_OPS)
    return {"steps": steps, "wall_seconds_per_step": wall / steps, "op_seconds_per_step": total,
            "matmul_seconds_per_step": matmul, "matmul_share": matmul / total if total else None,
            "by_type": dict(sorted(by_type.items(), key=lambda item: -item[1]))}


def worker_ours(cfg: dict) -> dict:
    import tensorflow as tf

    from bert_pretraining.replica import single_process
    from bert_pretraining.modeling import BertConfig
    from bert_pretraining.training import SegmentSettings, TrainingState, dropout_seeds, make_train_step

    bert = BertConfig(
        vocab_size=cfg["vocab"], hidden_size=cfg["hidden"], num_hidden_layers=cfg["layers"],
        num_attention_heads=cfg["heads"], intermediate_size=cfg["intermediate"], max_position_embeddings=512,
    )
    settings = SegmentSettings(
        bert_config=bert, input_files=[], records_per_file={}, inputs={}, output_dir=tempfile.mkdtemp(),
        init_checkpoint=None, init_from=None, start_step=0, end_step=10**6, run_last_step=10**6,
        max_seq_length=cfg["seq"], max_predictions_per_seq=cfg["predictions"], train_batch_size=cfg["batch"],
        num_train_steps=10_000, num_warmup_steps=100, learning_rate=1e-4, precision="fp32",
        use_xla=cfg["xla"], scale_learning_rate_by_ranks=False, save_checkpoints_steps=10**6, keep_checkpoints=1,
        log_every_steps=100, seed=12345, use_next_sentence_prediction=True, gradient_accumulation_steps=1,
        hang_timeout_seconds=0, divergence_patience=3,
    )
    replica = single_process()
    state = TrainingState(settings)
    train_step = make_train_step(state, settings, replica)
    batches = [{name: tf.constant(value) for name, value in batch.items()} for batch in synthetic_batches(cfg)]

    def run_step(index):
        metrics = train_step([batches[index % len(batches)]], dropout_seeds(state, settings, replica))
        return metrics["loss"].numpy()

    result = time_steps(run_step, cfg["warmup"], cfg["steps"])
    if cfg.get("profile") and not cfg["xla"]:
        result["profile"] = profile_ops(run_step, cfg["warmup"] + cfg["steps"])
    if cfg.get("host_sync_rounds"):
        result["host_sync"] = probe_host_sync(state, settings, replica, train_step, batches, cfg)
    result.update(implementation="ours", tensorflow=tf.__version__,
                  parameters=int(sum(v.shape.num_elements() for v in state.model.variables_by_name.values())))
    return result


def probe_host_sync(state, settings, replica, train_step, batches, cfg) -> dict:
    """Per-step host work of ``train_segment`` (issue item C), as the loop does it and without the sync.

    * ``loop``: what ``train_segment`` did per step before ``host_step.HostStep``: the step,
      ``int(global_step.numpy())`` (a device-to-host read that waits for the step), and
      TrainingLog's on-device sums of the six averaged metrics (eager ops, no read);
    * ``no_sync``: what it does now: the same without the per-step read (the host bounds the
      step by counting calls; the device's global step is read at a log/save event, here
      every 100 steps);
    * the host-side pieces alone (after a finished step): the read, the metric sums,
      ``dropout_seeds``.

    The modes alternate (in turn first) in blocks of ``host_sync_block`` steps for
    ``host_sync_rounds`` rounds, so that a change of the machine's load hits both; the best
    and the median block of each mode are reported.
    """
    import tensorflow as tf

    from bert_pretraining.training import dropout_seeds

    from bert_pretraining.metrics import TRAINING, names_shown_in

    averaged = names_shown_in(TRAINING)  # what the training log sums per step
    block = cfg.get("host_sync_block", 20)
    counter = [0]

    def run(mode):
        sums = {}
        host_step = int(state.global_step.numpy())
        started = time.perf_counter()
        for _ in range(block):
            index = counter[0]
            counter[0] += 1
            metrics = train_step([batches[index % len(batches)]], dropout_seeds(state, settings, replica))
            if mode == "loop":
                host_step = int(state.global_step.numpy())
                for name in averaged:
                    if name in metrics:
                        sums[name] = sums.get(name, 0.0) + tf.cast(metrics[name], tf.float32)
            else:
                host_step += 1
                for name in averaged:
                    if name in metrics:
                        sums[name] = sums.get(name, 0.0) + tf.cast(metrics[name], tf.float32)
                if host_step % 100 == 0:
                    host_step = int(state.global_step.numpy())
        float(sums["loss"].numpy())  # the log line's read, once per block
        return (time.perf_counter() - started) / block

    def micro(function, repeats=2000):
        started = time.perf_counter()
        for _ in range(repeats):
            function()
        return (time.perf_counter() - started) / repeats

    per_step = {"loop": [], "no_sync": []}
    for round_index in range(cfg["host_sync_rounds"]):
        order = list(per_step) if round_index % 2 == 0 else list(reversed(per_step))  # no order bias
        for mode in order:
            per_step[mode].append(run(mode))
    metrics = train_step([batches[0]], dropout_seeds(state, settings, replica))
    metrics["loss"].numpy()
    pieces = {
        "global_step_read": micro(lambda: int(state.global_step.numpy())),
        "metric_sums": micro(lambda: [tf.cast(metrics[name], tf.float32) + 0.0 for name in averaged if name in metrics], 500),
        "dropout_seeds": micro(lambda: dropout_seeds(state, settings, replica), 500),
    }
    return {"block": block, "rounds": cfg["host_sync_rounds"], "per_step_seconds": per_step,
            "best_per_step_seconds": {mode: min(values) for mode, values in per_step.items()},
            "median_per_step_seconds": {mode: statistics.median(values) for mode, values in per_step.items()},
            "pieces_seconds": pieces}


def worker_peer(cfg: dict) -> dict:
    import tensorflow as tf
    import tf_keras
    from official.modeling.optimization import legacy_adamw, lr_schedule
    from official.nlp.modeling import layers, models, networks

    tf_keras.utils.set_random_seed(12345)

    def gelu(x):
        return tf_keras.activations.gelu(x, approximate=False)

    initializer = tf_keras.initializers.TruncatedNormal(stddev=0.02)
    encoder = networks.BertEncoder(
        vocab_size=cfg["vocab"], hidden_size=cfg["hidden"], num_layers=cfg["layers"],
        num_attention_heads=cfg["heads"], max_sequence_length=512, type_vocab_size=2,
        inner_dim=cfg["intermediate"], inner_activation=gelu, output_dropout=0.1, attention_dropout=0.1,
        initializer=initializer,
    )
    model = models.BertPretrainerV2(
        encoder_network=encoder, mlm_activation=gelu, mlm_initializer=initializer,
        classification_heads=[layers.ClassificationHead(
            inner_dim=cfg["hidden"], num_classes=2, dropout_rate=0.1, name="next_sentence")],
    )
    decay = tf_keras.optimizers.schedules.PolynomialDecay(1e-4, 10_000, end_learning_rate=0.0, power=1.0)
    schedule = lr_schedule.LinearWarmup(decay, warmup_steps=100, warmup_learning_rate=0.0)
    optimizer = legacy_adamw.AdamWeightDecay(
        learning_rate=schedule, weight_decay_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
        exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"], gradient_clip_norm=1.0,
    )

    def step(batch):
        features = dict(
            input_word_ids=batch["input_ids"], input_mask=batch["input_mask"],
            input_type_ids=batch["segment_ids"], masked_lm_positions=batch["masked_lm_positions"],
        )
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            # MaskedLMTask.build_losses
            mlm_logits = tf.cast(outputs["mlm_logits"], tf.float32)
            lm_losses = tf_keras.losses.sparse_categorical_crossentropy(
                batch["masked_lm_ids"], mlm_logits, from_logits=True)
            weights = batch["masked_lm_weights"]
            mlm_loss = tf.math.divide_no_nan(tf.reduce_sum(lm_losses * weights), tf.reduce_sum(weights))
            nsp_logits = tf.cast(outputs["next_sentence"], tf.float32)
            nsp_loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
                batch["next_sentence_labels"], nsp_logits, from_logits=True))
            loss = mlm_loss + nsp_loss
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(list(zip(grads, variables)))
        # The task's metrics (MaskedLMTask.process_metrics), as values.
        labels = tf.cast(batch["masked_lm_ids"], tf.int32)
        correct = tf.cast(tf.equal(tf.argmax(mlm_logits, -1, output_type=tf.int32), labels), tf.float32)
        nsp_correct = tf.cast(tf.equal(tf.argmax(nsp_logits, -1, output_type=tf.int32),
                                       tf.reshape(batch["next_sentence_labels"], [-1])), tf.float32)
        return {"loss": loss, "mlm_accuracy": tf.math.divide_no_nan(tf.reduce_sum(correct * weights),
                                                                    tf.reduce_sum(weights)),
                "nsp_accuracy": tf.reduce_mean(nsp_correct)}

    train_step = tf.function(step, jit_compile=cfg["xla"])
    batches = [{name: tf.constant(value) for name, value in batch.items()} for batch in synthetic_batches(cfg)]

    def run_step(index):
        return train_step(batches[index % len(batches)])["loss"].numpy()

    result = time_steps(run_step, cfg["warmup"], cfg["steps"])
    if cfg.get("profile") and not cfg["xla"]:
        result["profile"] = profile_ops(run_step, cfg["warmup"] + cfg["steps"])
    from importlib.metadata import version

    result.update(implementation="peer", tensorflow=tf.__version__,
                  tf_models_official=version("tf-models-official"),
                  parameters=int(sum(v.shape.num_elements() for v in model.trainable_variables)))
    return result


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def flops_per_sequence(cfg: dict) -> float:
    """src/bert_pretraining/flops.py's formula (repeated so the peer's environment needs no package)."""
    h, i, layers, s, p, v = cfg["hidden"], cfg["intermediate"], cfg["layers"], cfg["seq"], cfg["predictions"], cfg["vocab"]
    return float(6 * s * layers * (4 * h * h + 2 * h * i) + 6 * layers * 2 * s * s * h
                 + 6 * p * (h * h + h * v) + 6 * (h * h + 2 * h))


def run_worker(python: Path, which: str, cfg: dict, env_extra: dict) -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.update(env_extra)
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        command = [str(python), str(Path(__file__).resolve()), "--worker", which,
                   "--worker-config", json.dumps(cfg), "--worker-output", out.name]
        started = time.perf_counter()
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
            return {"implementation": which, "error": f"exit {proc.returncode}: {tail}"}
        result = json.load(open(out.name))
    result["process_seconds"] = time.perf_counter() - started
    return result


def fmt(value, spec=",.2f"):
    return "-" if value is None else format(value, spec)


def render(cfg: dict, results: dict, meta: dict) -> str:
    tokens = cfg["batch"] * cfg["seq"]
    lines = [
        f"Model `{cfg['model']}`: {cfg['layers']} layers, hidden {cfg['hidden']}, {cfg['heads']} heads, "
        f"intermediate {cfg['intermediate']}, vocabulary {cfg['vocab']}; sequence {cfg['seq']}, batch {cfg['batch']}, "
        f"{cfg['predictions']} predictions, fp32; {cfg['steps']} timed steps after {cfg['warmup']} warm-up steps; "
        f"steps/s = 1 / median step time, best of {cfg['repeats']} alternating runs of each.",
        "",
        "| XLA | ours steps/s | peer steps/s | ours tokens/s | peer tokens/s | ours / peer (speed) | ours CPU s/step "
        "| peer CPU s/step | ours / peer (by CPU s) | goal | met? (speed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for xla in cfg["xla_modes"]:
        ours = results.get(f"ours-{xla}") or {}
        peer = results.get(f"peer-{xla}") or {}
        o, p = ours.get("steps_per_second"), peer.get("steps_per_second")
        ratio = o / p if o and p else None
        oc, pc = ours.get("cpu_seconds_per_step"), peer.get("cpu_seconds_per_step")
        cpu_ratio = pc / oc if oc and pc else None  # > 1: ours needs less CPU time per step
        goal = "ours >= peer" if xla == "off" else "ours > peer"
        met = "-" if ratio is None else ("met" if (ratio >= 1.0 if xla == "off" else ratio > 1.0) else "NOT met")
        lines.append(
            f"| {xla} | {fmt(o, '.3f')} | {fmt(p, '.3f')} | {fmt(o and o * tokens, ',.0f')} | "
            f"{fmt(p and p * tokens, ',.0f')} | {fmt(ratio, '.2f')}x | {fmt(ours.get('cpu_seconds_per_step'), '.3f')} | "
            f"{fmt(peer.get('cpu_seconds_per_step'), '.3f')} | {fmt(cpu_ratio, '.2f')}x | {goal} | {met} |"
        )
    lines += ["", "| run | mean steps/s | median step s | min step s | first step s (trace + compile) | load avg (1 min) | parameters | TensorFlow | model TFLOP/s |",
              "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    flops_step = flops_per_sequence(cfg) * cfg["batch"]
    for key, result in results.items():
        if "error" in result:
            lines.append(f"| {key} | failed: {result['error'].splitlines()[-1][:120]} | | | | | | | |")
            continue
        lines.append(
            f"| {key} | {result['mean_steps_per_second']:.3f} | {result['median_step_seconds']:.3f} | {result['min_step_seconds']:.3f} | "
            f"{result['first_step_seconds']:.1f} | {result['load_average']:.1f} | {result['parameters']:,} | "
            f"{result['tensorflow']} | {flops_step * result['steps_per_second'] / 1e12:.3f} |"
        )
    for key, result in results.items():
        profile = result.get("profile")
        if not profile:
            continue
        top = list(profile["by_type"].items())[:10]
        lines += ["", f"Profile of `{key}` (TensorFlow profiler, {profile['steps']} steps): op time "
                  f"{profile['op_seconds_per_step']:.3f} s/step (wall {profile['wall_seconds_per_step']:.3f} s), "
                  f"matmuls {profile['matmul_share']:.1%} of it. Top op types: "
                  + ", ".join(f"{name} {value / profile['op_seconds_per_step']:.1%}" for name, value in top) + "."]
    lines += ["", f"Model FLOPs per step (src/bert_pretraining/flops.py): {flops_step / 1e9:,.1f} GFLOP "
              f"({flops_per_sequence(cfg) / 1e9:.2f} GFLOP per sequence).",
              f"Machine: {meta['cpus']} CPUs, {meta['platform']}; load average before: {meta['load_before']:.1f}."]
    return "\n".join(lines) + "\n"


def render_host_sync(cfg: dict, results: dict) -> str:
    lines = [
        f"Host work per step of train_segment's loop, model `{cfg['model']}` ({cfg['layers']} layers, hidden "
        f"{cfg['hidden']}), batch {cfg['batch']}, seq {cfg['seq']}; best of {cfg['host_sync_rounds']} alternating "
        f"blocks of {cfg['host_sync_block']} steps.",
        "",
        "| XLA | before: step + global_step read each step, ms (best / median) | now (HostStep): device read "
        "at events, every 100 steps here, ms (best / median) | difference (best / median) | global_step read alone µs "
        "| 6 metric sums µs | dropout_seeds µs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for xla in cfg["xla_modes"]:
        result = results.get(f"ours-{xla}") or {}
        probe = result.get("host_sync")
        if not probe:
            lines.append(f"| {xla} | failed: {result.get('error', '?').splitlines()[-1][:100]} | | | | | |")
            continue
        best, pieces = probe["best_per_step_seconds"], probe["pieces_seconds"]
        median = probe["median_per_step_seconds"]
        diff = (best["loop"] - best["no_sync"]) / best["loop"]
        median_diff = (median["loop"] - median["no_sync"]) / median["loop"]
        lines.append(
            f"| {xla} | {best['loop'] * 1e3:.2f} / {median['loop'] * 1e3:.2f} | "
            f"{best['no_sync'] * 1e3:.2f} / {median['no_sync'] * 1e3:.2f} | {diff:+.1%} / {median_diff:+.1%} | "
            f"{pieces['global_step_read'] * 1e6:.0f} | {pieces['metric_sums'] * 1e6:.0f} | "
            f"{pieces['dropout_seeds'] * 1e6:.0f} |"
        )
    lines += ["", "difference = (before - now) / before: positive if the per-step read costs time. The pieces "
              "are timed alone after a finished step (host time; no step waits)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="small")
    for name in ("layers", "hidden", "heads", "intermediate"):
        parser.add_argument(f"--{name}", type=int, help="override the --model preset")
    parser.add_argument("--vocab", type=int, default=DEFAULTS["vocab"])
    parser.add_argument("--seq", type=int, default=DEFAULTS["seq"])
    parser.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    parser.add_argument("--predictions", type=int, default=DEFAULTS["predictions"])
    parser.add_argument("--steps", type=int, help="timed steps (default 20 small, 5 base)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (tracing, compilation)")
    parser.add_argument("--xla", default="off,on", help="comma-separated: off, on")
    parser.add_argument("--repeats", type=int, default=2, help="alternate ours/peer this many times; best kept")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="also profile 2 steps with XLA off (op time by op type; matmul share)")
    parser.add_argument("--host-sync", action="store_true",
                        help="ours only: the per-step host work of train_segment, with and without its "
                        "per-step global_step read (issue item C)")
    parser.add_argument("--host-sync-rounds", type=int, default=5)
    parser.add_argument("--host-sync-block", type=int, default=20, help="steps per block")
    parser.add_argument("--bench-venv", type=Path, default=ROOT / ".venv-bench")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--worker", choices=["ours", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-config", help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        cfg = json.loads(args.worker_config)
        result = (worker_ours if args.worker == "ours" else worker_peer)(cfg)
        with open(args.worker_output, "w") as handle:
            json.dump(result, handle)
        return 0

    cfg = dict(MODELS[args.model], model=args.model)
    for name in ("layers", "hidden", "heads", "intermediate"):
        if getattr(args, name) is not None:
            cfg[name] = getattr(args, name)
            cfg["model"] = "custom"
    cfg.update(vocab=args.vocab, seq=args.seq, batch=args.batch, predictions=args.predictions,
               warmup=args.warmup, repeats=args.repeats, steps=args.steps or (20 if args.model == "small" else 5),
               profile=args.profile, xla_modes=[mode.strip() for mode in args.xla.split(",") if mode.strip()])
    if args.host_sync:
        cfg.update(host_sync_rounds=args.host_sync_rounds, host_sync_block=args.host_sync_block)
        args.no_peer = True
    ours_python = Path(sys.executable)
    peer_python = None
    if not args.no_peer:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from records_benchmark import ensure_reference_env

        peer_python = ensure_reference_env(args.bench_venv.resolve())
    meta = dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                load_before=os.getloadavg()[0], date=time.strftime("%Y-%m-%d %H:%M:%S"))
    results: dict = {}
    for xla in cfg["xla_modes"]:
        run_cfg = dict(cfg, xla=(xla == "on"))
        for repeat in range(args.repeats):
            runs = [("ours", ours_python, {"PYTHONPATH": str(ROOT / "src")})]
            if peer_python:
                runs.append(("peer", peer_python, {}))
            for which, python, env in runs:
                print(f"[{time.strftime('%H:%M:%S')}] {which}, XLA {xla}, repeat {repeat + 1}/{args.repeats} "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
                result = run_worker(python, which, run_cfg, env)
                key = f"{which}-{xla}"
                if "error" in result:
                    print(f"  failed: {result['error']}", flush=True)
                else:
                    print(f"  {result['steps_per_second']:.3f} steps/s, median {result['median_step_seconds']:.3f} s, "
                          f"first step {result['first_step_seconds']:.1f} s", flush=True)
                best = results.get(key)
                if best is None or "error" in best or (
                        "error" not in result and result["steps_per_second"] > best["steps_per_second"]):
                    results[key] = result
    table = render_host_sync(cfg, results) if args.host_sync else render(cfg, results, meta)
    print()
    print(table)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{'host_sync' if args.host_sync else 'training_step'}_{cfg['model']}"
    title = "Host work per training step" if args.host_sync else "Training step benchmark"
    (args.out_dir / f"{stem}.md").write_text(f"# {title} ({meta['date']})\n\n{table}")
    (args.out_dir / f"{stem}.json").write_text(json.dumps(
        dict(config=cfg, meta=meta, flops_per_sequence=flops_per_sequence(cfg), results=results), indent=2))
    print(f"wrote {args.out_dir / stem}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
