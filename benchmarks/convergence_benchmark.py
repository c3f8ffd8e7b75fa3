#!/usr/bin/env python3
"""Same recipe, same records: does our training program learn as well and as fast as Transformers'?

    .venv/bin/python benchmarks/convergence_benchmark.py                      # 1000 steps, seeds 1 2 (~25 min)
    .venv/bin/python benchmarks/convergence_benchmark.py --steps 20 --seeds 1 # smoke run (~3 min)

1. Records: the workflow itself makes them from the bundled demo corpus
   (Snakemake with ``demo/config.yaml`` plus a small config naming the run
   ``convergence-bench`` under ``<workdir>/workflow``): 4 training shards,
   a held-out file and a cased 4,000-token vocabulary. Reused when present.
2. One small BERT recipe (hidden 128, 2 layers, 2 heads, intermediate 512,
   tanh GELU, dropout 0.1; batch 32 of length 128 with 20 predictions;
   1,000 steps; learning rate 1e-3, linear warmup over 10% of the steps,
   then linear decay to 0; AdamW with beta 0.9/0.999, epsilon 1e-6, weight
   decay 0.01 except LayerNorm and biases; clipping at global norm 1.0),
   trained once per seed by each of:

   * this project: ``workflow/scripts/run_pretraining.py`` with the flags the
     workflow passes (fp32, XLA, one process), then exported to a
     Transformers directory by ``workflow/scripts/export_model.py``;
   * the peer: Transformers' ``BertForPreTraining`` in PyTorch as a
     Transformers user trains it (``out.loss``, ``clip_grad_norm_``,
     ``torch.optim.AdamW``, ``get_linear_schedule_with_warmup``), fed the same
     batches in the same order by this project's input pipeline
     (``bert_pretraining.inputs.pretraining_dataset``, same seed).

   Each training is its own process, timed from outside the same way (wall
   time and CPU time, start-up and saving included); sequences/s are
   counted over the training loop (first step, with its tracing and
   compilation, included). Ours and the peer alternate, seed by seed.
3. One function, ``bert_pretraining.transformers_evaluation``, measures both
   final models on the same held-out records: masked-LM accuracy and loss,
   next-sentence accuracy.

Prints the two side by side (mean and min-max over seeds), the loss curves,
the goal (held-out masked-LM accuracy within run-to-run noise of the peer,
sequences/s at or above the peer's) and the recipe differences that remain;
writes ``convergence.json`` (every figure and curve) and ``convergence.svg``
(training loss against step) to ``--output`` (default ``<workdir>/convergence``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
WORK_DIR = ROOT / "results" / "benchmarks" / "convergence-bench"
RUN_NAME = "convergence-bench"
SYSTEMS = {"ours": "this project (TF)", "peer": "Transformers (PyTorch)"}
# Two means of held-out masked-LM accuracy are "within run-to-run noise" when they differ by
# at most the larger min-max spread over seeds of either system, and never less than this:
# with 2 seeds a spread can come out tiny by chance, and the demo's ~5,800 held-out
# predictions alone give a sampling error of about 0.005 on an accuracy of 0.2.
NOISE_FLOOR = 0.01
ADAM = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-6, weight_decay=0.01, clip_norm=1.0)
# The children run in the environment the benchmark was started in, whatever this process
# sets later to quiet its own libraries: our program's logs stay as the workflow's are.
CHILD_ENV = dict(os.environ)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


def run_timed(command: list, log: Path, what: str) -> dict:
    """Run a child process, its output to ``log``; its wall and CPU seconds (user + system, its children too)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(log, "w") as handle:
        returncode = subprocess.run(command, cwd=ROOT, env=CHILD_ENV, stdout=handle, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if returncode != 0:
        raise SystemExit(f"{what} failed (exit {returncode}); the end of its log {log}:\n{tail(log)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_seconds": wall, "cpu_seconds": cpu}


# --------------------------------------------------------------------------
# Records and model config
# --------------------------------------------------------------------------


def make_records(args) -> Path:
    """The workflow's records of the demo corpus for the recipe's length; returns the run directory."""
    results_dir = args.workdir / "workflow"
    run_dir = results_dir / RUN_NAME
    records = run_dir / "records" / f"seq{args.max_seq_length}"
    if not (records / "records.json").exists():
        make_records_with_snakemake(args, results_dir, run_dir, records)
    check_records(args, records)
    return run_dir


def make_records_with_snakemake(args, results_dir: Path, run_dir: Path, records: Path) -> None:
    import yaml

    results_dir.mkdir(parents=True, exist_ok=True)
    config = results_dir / "convergence-bench.yaml"
    # One phase of the recipe's shape, so that the records have its length and predictions
    # (the demo's phases would make records for 128 and 512 only). Steps do not matter here.
    phase = dict(max_seq_length=args.max_seq_length, max_predictions_per_seq=args.max_predictions_per_seq,
                 batch_size_per_gpu=args.batch, first_step=0, last_step=args.steps, num_train_steps=args.steps,
                 num_warmup_steps=args.warmup_steps, segment_steps=args.steps)
    config.write_text(yaml.safe_dump({"run_name": RUN_NAME, "results_dir": str(results_dir), "phases": [phase]}))
    log = results_dir / "snakemake.log"
    say(f"making records with the workflow from the demo corpus (under a minute; log {log})")
    run_timed([str(SNAKEMAKE), "--configfile", "demo/config.yaml", str(config), "--cores", str(args.threads),
               str(records / "records.json"), str(run_dir / "bert_config.json")], log, "Snakemake (making the records)")


def check_records(args, records: Path) -> None:
    """Records made for another length or number of predictions cannot be used; say where they came from."""
    sidecar = json.loads((records / "records.json").read_text())
    made = (sidecar["max_seq_length"], sidecar["max_predictions_per_seq"])
    if made != (args.max_seq_length, args.max_predictions_per_seq):
        raise SystemExit(
            f"{records} holds records of length {made[0]} with {made[1]} predictions; the recipe asks for "
            f"{args.max_seq_length} and {args.max_predictions_per_seq}: use another --workdir"
        )
    if not (records / "heldout.tfrecord").exists():
        raise SystemExit(f"{records}/heldout.tfrecord is missing; remove {records} to make the records again")


def write_bert_config(args, vocab_file: Path, path: Path) -> None:
    """The recipe's bert_config.json (tanh GELU: Transformers' gelu_new, Google's gelu)."""
    from bert_pretraining.bert_config import BertConfig

    vocab_size = sum(1 for line in vocab_file.read_text(encoding="utf-8").splitlines() if line)
    BertConfig(
        vocab_size=vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, intermediate_size=args.intermediate, hidden_act="gelu_tanh",
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=512,
    ).to_json_file(path)


# --------------------------------------------------------------------------
# Training: ours
# --------------------------------------------------------------------------


def train_ours(args, seed: int, files: dict, out: Path, extra_flags: tuple = ()) -> dict:
    """run_pretraining.py as the workflow runs it, then export_model.py; timing, curve and hf/ directory.

    ``extra_flags`` are appended to the training's command line (the optimizer benchmark's
    ``--optimizer`` and ``--gradient_accumulation_steps``).
    """
    train_dir = out / "train"
    command = [
        sys.executable, str(SCRIPTS / "run_pretraining.py"), "--bert_config_file", str(files["bert_config"]),
        "--input_file", str(files["records"] / "shard_*.tfrecord"), "--output_dir", str(train_dir),
        "--max_seq_length", str(args.max_seq_length), "--max_predictions_per_seq", str(args.max_predictions_per_seq),
        "--train_batch_size", str(args.batch), "--num_train_steps", str(args.steps),
        "--num_warmup_steps", str(args.warmup_steps), "--learning_rate", str(args.learning_rate),
        "--precision", "fp32", "--use_xla", "true", "--save_checkpoints_steps", str(args.steps),
        "--keep_checkpoints", "1", "--log_every_steps", str(args.log_every), "--distribution", "none",
        "--seed", str(seed), *extra_flags,
    ]
    timing = run_timed(command, out / "train.log", f"our training (seed {seed})")
    curve = read_metrics(train_dir / "metrics.jsonl")
    export = out / "export"
    run_timed([
        sys.executable, str(SCRIPTS / "export_model.py"), "--checkpoint", str(train_dir / f"model.ckpt-{args.steps}"),
        "--bert_config_file", str(files["bert_config"]), "--vocab_file", str(files["vocab"]),
        "--do_lower_case", "false", "--output", str(export),
    ], out / "export.log", f"exporting our model (seed {seed})")
    return dict(timing, loop_seconds=loop_seconds(curve), curve=curve, model_dir=str(export / "hf"))


def read_metrics(path: Path) -> list[dict]:
    """The log lines of metrics.jsonl as curve points (the training masked-LM loss as ``mlm_loss``)."""
    from bert_pretraining.metrics import read_metrics_line

    points = []
    for line in path.read_text().splitlines():
        record = read_metrics_line(line)
        if record is None:
            continue
        point = {name: record.get(name) for name in
                 ("step", "loss", "learning_rate", "sequences_per_second", "steps_per_second")}
        points.append(dict(point, mlm_loss=record.get("masked_lm_loss")))
    if not points:
        raise SystemExit(f"{path} is empty; expected one line per {path.parent} log interval")
    return points


def loop_seconds(curve: list[dict]) -> float:
    """The training loop's time: the sum of the log intervals' (steps / steps per second)."""
    total, previous = 0.0, 0
    for point in curve:
        total += (point["step"] - previous) / point["steps_per_second"]
        previous = point["step"]
    return total


# --------------------------------------------------------------------------
# Training: the peer (runs in its own process: --worker peer)
# --------------------------------------------------------------------------


def train_peer(args, seed: int, files: dict, out: Path) -> dict:
    """This script as a child process training BertForPreTraining; timing, curve and model directory."""
    model_dir = out / "hf"
    result_file = out / "worker.json"
    config = dict(
        seed=seed, bert_config=str(files["bert_config"]), vocab=str(files["vocab"]),
        input_file=str(files["records"] / "shard_*.tfrecord"), records_json=str(files["records"] / "records.json"),
        model_dir=str(model_dir), max_seq_length=args.max_seq_length,
        max_predictions_per_seq=args.max_predictions_per_seq, batch=args.batch, steps=args.steps,
        warmup_steps=args.warmup_steps, learning_rate=args.learning_rate, log_every=args.log_every,
        threads=args.threads,
    )
    timing = run_timed([sys.executable, __file__, "--worker-config", json.dumps(config),
                        "--worker-output", str(result_file)], out / "train.log", f"the peer's training (seed {seed})")
    result = json.loads(result_file.read_text())
    return dict(timing, loop_seconds=result["loop_seconds"], loop_cpu_seconds=result["loop_cpu_seconds"],
                curve=result["curve"], model_dir=str(model_dir))


def torch_batch(features, torch) -> dict:
    """A batch of our records as BertForPreTraining's arguments.

    MLM labels are -100 (ignored) except at the real predictions (weight > 0),
    where they are the original tokens: the padding predictions point at
    position 0 with weight 0 and must not become labels.
    """
    import numpy as np

    arrays = {name: value.numpy() for name, value in features.items()}
    positions, weights = arrays["masked_lm_positions"], arrays["masked_lm_weights"]
    labels = np.full(arrays["input_ids"].shape, -100, np.int64)
    rows, slots = np.nonzero(weights > 0)
    labels[rows, positions[rows, slots]] = arrays["masked_lm_ids"][rows, slots]
    as_long = lambda array: torch.from_numpy(np.asarray(array, np.int64))  # noqa: E731
    return dict(input_ids=as_long(arrays["input_ids"]), attention_mask=as_long(arrays["input_mask"]),
                token_type_ids=as_long(arrays["segment_ids"]), labels=torch.from_numpy(labels),
                next_sentence_label=as_long(arrays["next_sentence_labels"].reshape(-1)))


def decay_groups(model, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: our optimizer's rule (no decay where the name says LayerNorm or bias)."""
    import re

    from bert_pretraining.optimization import DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY

    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        excluded = any(re.search(pattern, name) for pattern in DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY)
        (no_decay if excluded else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def peer_model(cfg: dict, torch, transformers):
    """BertForPreTraining with our export's config.json for the recipe (the same sizes, activation and epsilon)."""
    from bert_pretraining.bert_config import BertConfig
    from bert_pretraining.export import hf_config
    from bert_pretraining.tokenization import read_vocabulary

    bert = BertConfig.from_json_file(cfg["bert_config"])
    pad_token_id = read_vocabulary(cfg["vocab"]).index("[PAD]")
    torch.manual_seed(cfg["seed"])
    config = transformers.BertConfig.from_dict(hf_config(bert, True, pad_token_id))
    return transformers.BertForPreTraining(config)


def peer_step(model, optimizer, scheduler, batch: dict, torch) -> tuple[float, float, float]:
    """One training step as a Transformers user writes it; (loss, masked-LM loss, learning rate used)."""
    output = model(**batch)
    output.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), ADAM["clip_norm"])
    learning_rate = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    # out.loss is MLM + NSP; the NSP part is cheap to recompute, the MLM part is the rest.
    with torch.no_grad():
        nsp_loss = torch.nn.functional.cross_entropy(output.seq_relationship_logits, batch["next_sentence_label"])
    loss = float(output.loss.detach())
    return loss, loss - float(nsp_loss), learning_rate


class LossWindow:
    """The curve's points: losses averaged over each log interval, as our training log averages them."""

    def __init__(self, batch: int):
        self.batch = batch
        self._reset()

    def _reset(self) -> None:
        self.loss = self.mlm_loss = 0.0
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, loss: float, mlm_loss: float, learning_rate: float) -> None:
        self.loss += loss
        self.mlm_loss += mlm_loss
        self.steps += 1
        self.learning_rate = learning_rate

    def close(self, step: int) -> dict:
        elapsed = time.perf_counter() - self.started
        point = dict(step=step, loss=self.loss / self.steps, mlm_loss=self.mlm_loss / self.steps,
                     learning_rate=self.learning_rate, sequences_per_second=self.steps * self.batch / elapsed,
                     steps_per_second=self.steps / elapsed)
        self._reset()
        return point


def peer_worker(cfg: dict) -> dict:
    quiet_libraries()
    import torch
    import transformers

    from bert_pretraining.inputs import expand_input_files, pretraining_dataset
    from bert_pretraining.record_shares import records_per_file
    from bert_pretraining.records_sidecar import read_records_sidecar

    torch.set_num_threads(cfg["threads"])
    model = peer_model(cfg, torch, transformers)
    model.train()
    optimizer = torch.optim.AdamW(decay_groups(model, ADAM["weight_decay"]), lr=cfg["learning_rate"],
                                  betas=(ADAM["beta_1"], ADAM["beta_2"]), eps=ADAM["epsilon"])
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, cfg["warmup_steps"], cfg["steps"])
    dataset = pretraining_dataset(
        expand_input_files(cfg["input_file"]), records_per_file(read_records_sidecar(cfg["records_json"])),
        batch_size=cfg["batch"], max_seq_length=cfg["max_seq_length"],
        max_predictions_per_seq=cfg["max_predictions_per_seq"], seed=cfg["seed"],
    )
    curve, window = [], LossWindow(cfg["batch"])
    loop_started, cpu_started = time.perf_counter(), time.process_time()
    batches = iter(dataset)  # inside the timed loop, as our program's first log interval includes it
    for step in range(1, cfg["steps"] + 1):
        window.add(*peer_step(model, optimizer, scheduler, torch_batch(next(batches), torch), torch))
        if step % cfg["log_every"] == 0 or step == cfg["steps"]:
            curve.append(window.close(step))
    loop = time.perf_counter() - loop_started
    loop_cpu = time.process_time() - cpu_started
    model.save_pretrained(cfg["model_dir"])
    shutil.copyfile(cfg["vocab"], os.path.join(cfg["model_dir"], "vocab.txt"))
    return dict(curve=curve, loop_seconds=loop, loop_cpu_seconds=loop_cpu,
                torch=torch.__version__, transformers=transformers.__version__)


# --------------------------------------------------------------------------
# Evaluation and the report
# --------------------------------------------------------------------------


def quiet_libraries() -> None:
    """No Transformers progress bars and less TensorFlow chatter (its oneDNN start-up lines print anyway)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import transformers

    transformers.utils.logging.disable_progress_bar()


def evaluate(args, model_dir: str, heldout: Path) -> dict:
    quiet_libraries()
    import torch

    from bert_pretraining.transformers_evaluation import transformers_heldout_metrics

    torch.set_num_threads(args.threads)
    return transformers_heldout_metrics(model_dir, str(heldout), max_seq_length=args.max_seq_length,
                                        max_predictions_per_seq=args.max_predictions_per_seq)


FIGURES = (
    # (key, label, format)
    ("masked_lm_accuracy", "held-out masked-LM accuracy", ".4f"),
    ("masked_lm_loss", "held-out masked-LM loss", ".4f"),
    ("next_sentence_accuracy", "held-out next-sentence accuracy", ".4f"),
    ("wall_seconds", "training wall time [s]", ".1f"),
    ("cpu_seconds", "training CPU time [s]", ".1f"),
    ("sequences_per_second", "sequences/s (training loop)", ".1f"),
)


def spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values), "values": values}


def summarize(runs: dict) -> dict:
    """Mean and min-max over seeds of every figure, per system."""
    summary = {}
    for system, by_seed in runs.items():
        summary[system] = {key: spread([run[key] for run in by_seed.values()]) for key, _, _ in FIGURES
                           if all(run.get(key) is not None for run in by_seed.values())}
    return summary


def goals(summary: dict) -> dict:
    ours, peer = summary["ours"], summary["peer"]
    accuracy_ours, accuracy_peer = ours["masked_lm_accuracy"], peer["masked_lm_accuracy"]
    difference = accuracy_ours["mean"] - accuracy_peer["mean"]
    noise = max(accuracy_ours["max"] - accuracy_ours["min"], accuracy_peer["max"] - accuracy_peer["min"], NOISE_FLOOR)
    speed_ours, speed_peer = ours["sequences_per_second"]["mean"], peer["sequences_per_second"]["mean"]
    return {"accuracy_difference": difference, "accuracy_noise": noise, "accuracy_met": abs(difference) <= noise,
            "speed_ratio": speed_ours / speed_peer, "speed_met": speed_ours >= speed_peer}


def cell(figure: dict, fmt: str) -> str:
    if figure["min"] == figure["max"]:
        return format(figure["mean"], fmt)
    return f"{figure['mean']:{fmt}} ({figure['min']:{fmt}}-{figure['max']:{fmt}})"


def render(args, summary: dict, goal: dict) -> str:
    lines = [
        f"convergence: {args.steps} steps x batch {args.batch}, seq {args.max_seq_length}, hidden {args.hidden}, "
        f"{args.layers} layers, lr {args.learning_rate:g} (warmup {args.warmup_steps}), "
        f"seeds {' '.join(map(str, args.seeds))}",
        f"{'':34}{SYSTEMS['ours']:<26}{SYSTEMS['peer']}",
    ]
    for key, label, fmt in FIGURES:
        if key in summary["ours"] and key in summary["peer"]:
            lines.append(f"{label:<34}{cell(summary['ours'][key], fmt):<26}{cell(summary['peer'][key], fmt)}")
    met = lambda flag: "met" if flag else "NOT met"  # noqa: E731
    difference = goal["accuracy_difference"]
    direction = "ours higher" if difference > 0 else "ours lower" if difference < 0 else "the same"
    lines += [
        f"goal: accuracy within run-to-run noise of the peer: {met(goal['accuracy_met'])} (difference "
        f"{difference:+.4f}, {direction}; noise {goal['accuracy_noise']:.4f}); "
        f"sequences/s >= peer: {met(goal['speed_met'])} ({goal['speed_ratio']:.2f}x)",
        f"rule: within noise = |mean difference| <= max(min-max spread over seeds of either system, {NOISE_FLOOR}); "
        "the means and (min-max) are over seeds",
    ]
    return "\n".join(lines)


def render_curves(args, runs: dict) -> str:
    """Training loss (mean over each log interval) at about ten steps of the run, every system and seed."""
    columns = [(system, seed) for system in runs for seed in runs[system]]
    every = max(args.log_every, (args.steps // 10) // args.log_every * args.log_every)
    header = "step   " + "".join(f"{system} s{seed}".rjust(12) for system, seed in columns)
    lines = ["training loss (MLM + NSP, mean over each log interval):", header]
    steps = sorted({point["step"] for system, seed in columns for point in runs[system][seed]["curve"]})
    for step in [step for step in steps if step % every == 0 or step == steps[-1]]:
        row = f"{step:<7}"
        for system, seed in columns:
            loss = next((p["loss"] for p in runs[system][seed]["curve"] if p["step"] == step), None)
            row += (f"{loss:.4f}" if loss is not None else "-").rjust(12)
        lines.append(row)
    return "\n".join(lines)


def recipe_differences(args) -> list[str]:
    """What is not the same in the two trainings, and cannot be without leaving each library's usual path."""
    ours_peak = args.learning_rate * (args.steps - args.warmup_steps) / args.steps
    # Without the correction the second moment is underestimated by (1 - beta2**step), so an
    # update is larger by 1 / sqrt(of that) (the first moment's correction is ~1 after ~50 steps).
    larger = lambda step: (1 - ADAM["beta_2"] ** max(step, 1)) ** -0.5  # noqa: E731
    return [
        "Adam: ours is Google's AdamWeightDecay, without bias correction of the moments; torch.optim.AdamW "
        f"corrects them. So our updates are larger at the same rate: {larger(args.warmup_steps):.2f}x at the end "
        f"of warmup (step {args.warmup_steps}), {larger(args.steps):.2f}x at the last step.",
        f"schedule: ours (Google's) decays from step 0 as if there were no warmup, so after warmup the rate is "
        f"{ours_peak:g} (lr x (1 - warmup/steps)); get_linear_schedule_with_warmup peaks at {args.learning_rate:g} "
        "and decays from there. Both reach 0 at the last step; both use rate 0 for the first step.",
        "initialisation: ours draws truncated normal weights (stddev 0.02), Transformers plain normal (0.02) and a "
        "zero [PAD] embedding that nn.Embedding(padding_idx) never updates.",
        "dropout masks and weight initialisation come from each library's own random streams (same seed number, "
        "different numbers); the batches are the same, in the same order.",
        "execution: ours runs the step as one XLA-compiled function and scores only the masked positions; "
        "Transformers runs eager PyTorch and scores every position (vocabulary x sequence) before the loss.",
        "clipping: torch divides by (norm + 1e-6), TensorFlow by norm: the same to six digits.",
    ]


def plot_curves(lines: list[tuple], path: Path, title: str, xlabel: str = "step", clip_spikes: bool = False) -> None:
    """Training loss (left) and training masked-LM loss (right) against step.

    ``lines`` holds one (curve, line style, colour, label) per run. ``clip_spikes`` cuts each axis
    at the highest starting loss: a spike of an unstable run would flatten every other curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for curve, style, colour, label in lines:
        steps = [point["step"] for point in curve]
        for axis, key in zip(axes, ("loss", "mlm_loss")):
            axis.plot(steps, [point[key] for point in curve], style, color=colour, label=label)
    for axis, key, label in zip(axes, ("loss", "mlm_loss"), ("training loss (MLM + NSP)", "training masked-LM loss")):
        if clip_spikes and lines:
            axis.set_ylim(top=max(curve[0][key] for curve, *_ in lines) + 0.2)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot(runs: dict, path: Path, title: str) -> None:
    colours = {"ours": "tab:blue", "peer": "tab:orange"}
    styles = ["-", "--", ":", "-."]
    plot_curves([(run["curve"], styles[index % len(styles)], colours[system], f"{SYSTEMS[system]}, seed {seed}")
                 for system, by_seed in runs.items()
                 for index, (seed, run) in enumerate(sorted(by_seed.items()))], path, title)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--max-predictions-per-seq", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--intermediate", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, help="default: 10%% of --steps")
    parser.add_argument("--seeds", type=int, default=2, help="train each system with seeds 1..N (default 2)")
    parser.add_argument("--log-every", type=int, default=25, help="steps per point of the loss curves")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the peer and of Snakemake")
    parser.add_argument("--workdir", type=Path, default=WORK_DIR,
                        help="records (workflow/), training runs (runs/) and, by default, the output")
    parser.add_argument("--output", type=Path, help="default: <workdir>/convergence")
    parser.add_argument("--worker-config", help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_config:
        return args
    if args.seeds < 1:
        parser.error(f"--seeds {args.seeds}: expected 1 or more (2 or more to see run-to-run noise)")
    args.seeds = list(range(1, args.seeds + 1))
    if args.warmup_steps is None:
        args.warmup_steps = round(0.1 * args.steps)
    if args.steps < 1 or not 0 <= args.warmup_steps < args.steps:
        parser.error(f"--steps {args.steps} and --warmup-steps {args.warmup_steps}: expected 0 <= warmup < steps")
    args.workdir = args.workdir.resolve()
    args.output = (args.output or args.workdir / "convergence").resolve()
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker_config:
        result = peer_worker(json.loads(args.worker_config))
        Path(args.worker_output).write_text(json.dumps(result))
        return 0

    run_dir = make_records(args)
    runs_dir = args.workdir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    files = {"records": run_dir / "records" / f"seq{args.max_seq_length}", "vocab": run_dir / "vocab.txt",
             "bert_config": runs_dir / "bert_config.json"}
    write_bert_config(args, files["vocab"], files["bert_config"])
    heldout = files["records"] / "heldout.tfrecord"
    meta = dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                load_before=os.getloadavg()[0], date=time.strftime("%Y-%m-%d %H:%M:%S"))
    runs: dict = {"ours": {}, "peer": {}}
    for seed in args.seeds:  # ours and the peer alternate, so that a change of load hits both
        for system, train in (("ours", train_ours), ("peer", train_peer)):
            out = runs_dir / f"{system}-seed{seed}"
            shutil.rmtree(out, ignore_errors=True)  # our program would resume a finished run instead
            out.mkdir(parents=True)
            say(f"{SYSTEMS[system]}, seed {seed}: training {args.steps} steps (load {os.getloadavg()[0]:.1f})")
            run = train(args, seed, files, out)
            run["sequences_per_second"] = args.steps * args.batch / run["loop_seconds"]
            run.update(evaluate(args, run["model_dir"], heldout))
            runs[system][seed] = run
            say(f"  {run['wall_seconds']:.0f} s wall, {run['cpu_seconds']:.0f} s CPU, "
                f"{run['sequences_per_second']:.1f} seq/s; held-out masked-LM accuracy {run['masked_lm_accuracy']:.4f}")
    summary = summarize(runs)
    goal = goals(summary)
    table = render(args, summary, goal)
    differences = recipe_differences(args)
    args.output.mkdir(parents=True, exist_ok=True)
    plot(runs, args.output / "convergence.svg", table.splitlines()[0])
    print()
    print(table)
    print()
    print(render_curves(args, runs))
    print()
    print("recipe differences that remain:")
    print("\n".join(f"- {line}" for line in differences))
    recipe = {name: value for name, value in vars(args).items() if name not in ("worker_config", "worker_output")}
    recipe.update(workdir=str(args.workdir), output=str(args.output), adam=ADAM, noise_floor=NOISE_FLOOR)
    (args.output / "convergence.json").write_text(json.dumps(
        dict(recipe=recipe, meta=dict(meta, load_after=os.getloadavg()[0]), heldout=str(heldout), summary=summary,
             goals=goal, recipe_differences=differences, runs=runs), indent=2))
    print(f"\nwrote {args.output / 'convergence.json'} and {args.output / 'convergence.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
