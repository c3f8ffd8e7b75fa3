#!/usr/bin/env python3
"""LAMB against AdamW at a large global batch made by gradient accumulation (issue #28's proof).

    .venv/bin/python benchmarks/optimizer_benchmark.py                       # the default sweep (~15 min on 2 cores)
    .venv/bin/python benchmarks/optimizer_benchmark.py --steps 4 --adamw-rates 7.5e-4 --lamb-rates 5e-2  # smoke run (~2 min)

1. Records: the workflow makes them from the bundled demo corpus, exactly as
   ``convergence_benchmark.py`` does (its ``make_records``), under
   ``<output>/workflow``; reused when present.
2. A smaller BERT than convergence_benchmark's, for time (hidden 64, 2
   layers, 2 heads, intermediate 256, tanh GELU, dropout 0.1; a step of 512
   sequences costs half the CPU time of hidden 128), trained by
   ``workflow/scripts/run_pretraining.py`` with the workflow's flags (fp32,
   XLA, one process; convergence_benchmark's ``train_ours``) at a global batch
   of 512: 32 sequences of length 128 (20 predictions) per micro-batch x
   ``--gradient_accumulation_steps`` 16, for a fixed budget of 100 optimizer
   steps (51,200 sequences, about 2 epochs of the demo's 26,236 records),
   warmup over 10% of them, then the schedule module's linear decay to 0;
   beta 0.9/0.999, epsilon 1e-6, weight decay 0.01 except LayerNorm and
   biases, clipping at global norm 1.0 (the same for both). Each optimizer
   runs a sweep of three rates a factor 2 apart, once per seed:

   * ``--optimizer=adamw`` (Google's AdamWeightDecay, no bias correction):
     3.75e-4, 7.5e-4, 1.5e-3. The square-root scaling of convergence_benchmark's
     1e-3 at batch 32 to a 16x larger batch gives 4e-3, but in a first sweep
     (2026-12-05) 1.5e-3, 3e-3 and 6e-3 all stalled where the model predicts
     "." at every masked position, 1.5e-3 lowest; 7.5e-4 and 3.75e-4 did
     slightly better and alike: the sweep brackets AdamW's best.
   * ``--optimizer=lamb`` (NVIDIA's LAMB): 2.5e-2, 5e-2, 1e-1. LAMB's rate is
     a relative step: it moves each tensor by about rate x its own norm
     (the trust ratio ||w|| / ||update||), where Adam moves each weight by
     about the rate. With weights of scale 0.02, LAMB at 5e-2 moves a weight
     matrix about as far per step as Adam at 1e-3. So the usual 2e-3-1e-2
     barely moves this model in 100 steps (a 30-step probe at 2e-2: training
     loss 7.21 against 6.72 for AdamW at 3e-3), and NVIDIA's 6e-3 is a rate for
     BERT-large over 7,038 steps at batch 64K. 2e-1 was unstable in the first
     sweep (loss spikes to 11.4); 5e-2 was best there.

   The runs alternate between the optimizers, so that a change of load hits
   both. Each training is its own process, timed from outside (wall time,
   start-up and saving included); sequences/s are counted over the training
   loop (first step, with its XLA compilation, included).
3. Each final model is exported to a Transformers directory
   (``export_model.py``) and measured on the held-out records by
   ``bert_pretraining.transformers_evaluation`` (convergence_benchmark's
   ``evaluate``): masked-LM accuracy and loss, next-sentence accuracy.

Prints one row per run (optimizer, learning rate, final training loss,
held-out figures, wall time, sequences/s), the loss curves, and the best rate of
each optimizer side by side; writes ``optimizer.json`` (every figure and curve)
and ``optimizer.svg`` (training loss against step) to ``--output`` (default
``results/benchmarks/optimizer-bench``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convergence_benchmark as convergence  # noqa: E402  (the records, training, export and evaluation)

ROOT = convergence.ROOT
OUTPUT = ROOT / "results" / "benchmarks" / "optimizer-bench"
OPTIMIZERS = ("adamw", "lamb")
DEFAULT_RATES = {"adamw": (3.75e-4, 7.5e-4, 1.5e-3), "lamb": (2.5e-2, 5e-2, 1e-1)}
# The same for both optimizers: the schema's defaults (Google's and NVIDIA's).
HYPERPARAMETERS = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-6, weight_decay_rate=0.01)
say = convergence.say


def run_name(optimizer: str, rate: float, seed: int) -> str:
    return f"{optimizer}-lr{rate:g}-seed{seed}"


def train(args, optimizer: str, rate: float, seed: int, files: dict) -> dict:
    """One training (run_pretraining.py, then export), evaluated; a failed training is recorded, not fatal."""
    out = args.output / "runs" / run_name(optimizer, rate, seed)
    shutil.rmtree(out, ignore_errors=True)  # our program would resume a finished run instead
    out.mkdir(parents=True)
    flags = ["--optimizer", optimizer, "--gradient_accumulation_steps", str(args.accumulation)]
    for key, value in HYPERPARAMETERS.items():
        flags += [f"--{key}", str(value)]
    recipe = argparse.Namespace(**{**vars(args), "learning_rate": rate})
    run = dict(optimizer=optimizer, learning_rate=rate, seed=seed)
    try:
        run.update(convergence.train_ours(recipe, seed, files, out, extra_flags=tuple(flags)))
    except SystemExit as failure:  # diverged or crashed: keep the row, say why
        run.update(failed=str(failure).splitlines()[0], log=str(out / "train.log"))
        metrics = out / "train" / "metrics.jsonl"
        if metrics.exists() and metrics.read_text().strip():
            run["curve"] = convergence.read_metrics(metrics)
        return run
    run["sequences_per_second"] = args.steps * args.global_batch / run["loop_seconds"]
    run["final_loss"] = run["curve"][-1]["loss"]
    run["final_mlm_loss"] = run["curve"][-1]["mlm_loss"]
    run.update(convergence.evaluate(args, run["model_dir"], files["records"] / "heldout.tfrecord"))
    return run


COLUMNS = (
    # (key, header, format, width)
    ("final_loss", "train loss", ".4f", 11),
    ("masked_lm_accuracy", "MLM acc", ".4f", 9),
    ("masked_lm_loss", "MLM loss", ".4f", 9),
    ("next_sentence_accuracy", "NSP acc", ".4f", 9),
    ("wall_seconds", "wall s", ".0f", 8),
    ("sequences_per_second", "seq/s", ".1f", 8),
)


def mean_of(runs: list[dict], key: str):
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.fmean(values) if len(values) == len(runs) and values else None


def by_setting(runs: list[dict]) -> dict:
    """Runs grouped by (optimizer, learning rate), in the order of the sweep."""
    groups: dict = {}
    for run in runs:
        groups.setdefault((run["optimizer"], run["learning_rate"]), []).append(run)
    return dict(sorted(groups.items(), key=lambda item: (OPTIMIZERS.index(item[0][0]), item[0][1])))


def render(args, runs: list[dict]) -> str:
    lines = [
        f"optimizers: {args.steps} optimizer steps x global batch {args.global_batch} ({args.batch} x "
        f"{args.accumulation} accumulated), seq {args.max_seq_length}, hidden {args.hidden}, {args.layers} layers, "
        f"warmup {args.warmup_steps}, seeds {' '.join(map(str, args.seeds))}",
        f"{'optimizer':<10}{'lr':>8}{'':2}" + "".join(f"{header:>{width}}" for _, header, _, width in COLUMNS),
    ]
    for (optimizer, rate), group in by_setting(runs).items():
        row = f"{optimizer:<10}{rate:>8g}{'':2}"
        failed = [run for run in group if run.get("failed")]
        if failed:
            lines.append(row + f"  FAILED: {failed[0]['failed']}")
            continue
        for key, _, fmt, width in COLUMNS:
            value = mean_of(group, key)
            row += (format(value, fmt) if value is not None else "-").rjust(width)
        lines.append(row)
    if len(args.seeds) > 1:
        lines.append(f"(means over seeds {' '.join(map(str, args.seeds))})")
    return "\n".join(lines)


def best_rates(runs: list[dict]) -> dict:
    """Per optimizer, the learning rate with the highest held-out masked-LM accuracy (mean over seeds)."""
    best = {}
    for (optimizer, rate), group in by_setting(runs).items():
        accuracy = mean_of(group, "masked_lm_accuracy")
        if accuracy is None:
            continue
        if optimizer not in best or accuracy > best[optimizer]["masked_lm_accuracy"]:
            best[optimizer] = {"learning_rate": rate, **{key: mean_of(group, key) for key, _, _, _ in COLUMNS}}
    return best


def render_best(best: dict) -> str:
    if set(best) != set(OPTIMIZERS):
        return "best rates: not every optimizer finished a run"
    lamb, adamw = best["lamb"], best["adamw"]
    difference = lamb["masked_lm_accuracy"] - adamw["masked_lm_accuracy"]
    within = abs(difference) <= convergence.NOISE_FLOOR
    verdict = ("within" if within else "beyond") + f" the {convergence.NOISE_FLOOR} noise floor of convergence_benchmark"
    return (
        f"best rates: lamb {lamb['learning_rate']:g} (MLM acc {lamb['masked_lm_accuracy']:.4f}, loss "
        f"{lamb['masked_lm_loss']:.4f}) vs adamw {adamw['learning_rate']:g} (MLM acc "
        f"{adamw['masked_lm_accuracy']:.4f}, loss {adamw['masked_lm_loss']:.4f}): "
        f"lamb - adamw = {difference:+.4f} accuracy, {lamb['masked_lm_loss'] - adamw['masked_lm_loss']:+.4f} loss "
        f"({verdict})"
    )


def render_curves(args, runs: list[dict]) -> str:
    """Training loss (mean over each log interval) at about ten steps, every run."""
    columns = [run for run in runs if run.get("curve")]
    names = [f"{run['optimizer']} {run['learning_rate']:g}" + (f" s{run['seed']}" if len(args.seeds) > 1 else "")
             for run in columns]
    width = max([12] + [len(name) + 2 for name in names])
    every = max(args.log_every, (args.steps // 10) // args.log_every * args.log_every)
    lines = ["training loss (MLM + NSP, mean over each log interval):",
             "step   " + "".join(name.rjust(width) for name in names)]
    steps = sorted({point["step"] for run in columns for point in run["curve"]})
    for step in [step for step in steps if step % every == 0 or step == steps[-1]]:
        row = f"{step:<7}"
        for run in columns:
            loss = next((point["loss"] for point in run["curve"] if point["step"] == step), None)
            row += (f"{loss:.4f}" if loss is not None else "-").rjust(width)
        lines.append(row)
    return "\n".join(lines)


def plot(runs: list[dict], path: Path, title: str) -> None:
    """Colour by optimizer, line style by rate."""
    colours = {"adamw": "tab:blue", "lamb": "tab:red"}
    styles = [":", "--", "-", "-."]
    rates = {optimizer: sorted({run["learning_rate"] for run in runs if run["optimizer"] == optimizer})
             for optimizer in OPTIMIZERS}
    convergence.plot_curves(
        [(run["curve"], styles[rates[run["optimizer"]].index(run["learning_rate"]) % len(styles)],
          colours[run["optimizer"]], f"{run['optimizer']} lr {run['learning_rate']:g}, seed {run['seed']}")
         for run in runs if run.get("curve")],
        path, title, xlabel="optimizer step", clip_spikes=True)


def tensorflow_version() -> str:
    for distribution in ("tensorflow", "tensorflow-cpu"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--max-predictions-per-seq", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--intermediate", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32, help="sequences per micro-batch (the per-rank batch)")
    parser.add_argument("--accumulation", type=int, default=16, help="--gradient_accumulation_steps (default 16)")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps (each of batch x accumulation)")
    parser.add_argument("--warmup-steps", type=int, help="default: 10%% of --steps")
    parser.add_argument("--adamw-rates", type=float, nargs="*", default=list(DEFAULT_RATES["adamw"]))
    parser.add_argument("--lamb-rates", type=float, nargs="*", default=list(DEFAULT_RATES["lamb"]))
    parser.add_argument("--seeds", type=int, default=1, help="train every setting with seeds 1..N (default 1)")
    parser.add_argument("--log-every", type=int, default=5, help="optimizer steps per point of the loss curves")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the evaluation and of Snakemake")
    parser.add_argument("--output", type=Path, default=OUTPUT,
                        help="records (workflow/), training runs (runs/), optimizer.json and optimizer.svg")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds {args.seeds}: expected 1 or more")
    if not args.adamw_rates and not args.lamb_rates:
        parser.error("no learning rates: give --adamw-rates and/or --lamb-rates")
    args.seeds = list(range(1, args.seeds + 1))
    if args.warmup_steps is None:
        args.warmup_steps = round(0.1 * args.steps)
    if args.steps < 1 or not 0 <= args.warmup_steps < args.steps:
        parser.error(f"--steps {args.steps} and --warmup-steps {args.warmup_steps}: expected 0 <= warmup < steps")
    if args.batch < 1 or args.accumulation < 1:
        parser.error("--batch and --accumulation: expected 1 or more")
    args.global_batch = args.batch * args.accumulation
    args.output = args.output.resolve()
    args.workdir = args.output  # convergence_benchmark.make_records makes the records under <workdir>/workflow
    return args


def sweep(args) -> list[tuple[str, float]]:
    """(optimizer, rate) in alternating order: adamw's first rate, lamb's first, adamw's second, ..."""
    rates = {"adamw": sorted(args.adamw_rates), "lamb": sorted(args.lamb_rates)}
    order = []
    for index in range(max(len(rates["adamw"]), len(rates["lamb"]))):
        order += [(optimizer, rates[optimizer][index]) for optimizer in OPTIMIZERS if index < len(rates[optimizer])]
    return order


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    run_dir = convergence.make_records(args)
    runs_dir = args.output / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    files = {"records": run_dir / "records" / f"seq{args.max_seq_length}", "vocab": run_dir / "vocab.txt",
             "bert_config": runs_dir / "bert_config.json"}
    convergence.write_bert_config(args, files["vocab"], files["bert_config"])
    meta = dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                tensorflow=tensorflow_version(), load_before=os.getloadavg()[0],
                date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), command=" ".join(sys.argv))
    runs = []
    for seed in args.seeds:
        for optimizer, rate in sweep(args):
            say(f"{optimizer} lr {rate:g}, seed {seed}: {args.steps} steps of {args.global_batch} sequences "
                f"(load {os.getloadavg()[0]:.1f})")
            run = train(args, optimizer, rate, seed, files)
            runs.append(run)
            if run.get("failed"):
                say(f"  FAILED: {run['failed']} (log {run['log']})")
            else:
                say(f"  {run['wall_seconds']:.0f} s wall, {run['sequences_per_second']:.1f} seq/s; final training loss "
                    f"{run['final_loss']:.4f}, held-out masked-LM accuracy {run['masked_lm_accuracy']:.4f}")
    table = render(args, runs)
    best = best_rates(runs)
    total = time.perf_counter() - started
    args.output.mkdir(parents=True, exist_ok=True)
    plot(runs, args.output / "optimizer.svg", table.splitlines()[0])
    print()
    print(table)
    print()
    print(render_best(best))
    print()
    print(render_curves(args, runs))
    print(f"\nwhole benchmark: {total / 60:.1f} min (TensorFlow {meta['tensorflow']}, {meta['cpus']} CPUs)")
    recipe = {name: (str(value) if isinstance(value, Path) else value) for name, value in vars(args).items()}
    recipe.update(hyperparameters=HYPERPARAMETERS, clip_norm=1.0, precision="fp32", use_xla=True)
    (args.output / "optimizer.json").write_text(json.dumps(
        dict(recipe=recipe, meta=dict(meta, load_after=os.getloadavg()[0], total_seconds=total),
             heldout=str(files["records"] / "heldout.tfrecord"), table=table, best=best, runs=runs), indent=2))
    print(f"wrote {args.output / 'optimizer.json'} and {args.output / 'optimizer.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
