"""emotion-av: `lexiedge train` (the shared engine) against a plain PyTorch loop over the same model and data.

    python bench/bench_train_engine.py --json engine.json          # synth-av, 17 actors, 3 epochs, 2 repeats
    python bench/bench_train_engine.py --actors 12 --clips-per-emotion 2 ...   # 2026-12-07's: 16 steps per epoch
    python bench/bench_train_engine.py --tiny --json /tmp/e.json   # 1 epoch, 1 repeat: checks the script

Both runners build the cpu profile's emotion-av model through its plugin (seeded, the same feature
normalisation measured on the training clips), read the same cached features through the ravdess plugin's
datasets and collate (batch 8, shuffled, ragged last batch dropped, no worker processes), and train with
the same AdamW (decay on matrices only, fused kernel where there is one), warmup-cosine schedule, grad clip
and loss (cross-entropy with the profile's label smoothing). What only the engine does is what this
measures: per-step logging (metrics.jsonl, TensorBoard), the progress bar, the running train metrics,
checkpoints (every epoch, with checksums and fsync), the best-checkpoint bookkeeping, run.json.

Two variants (``--variants``): ``train`` (no validation split: steps and checkpoints only) and ``eval``
(the last two actors validate after every epoch; the plain loop then runs its own evaluation loop over the same
split: loss and accuracy). Each child process first trains a short warm-up run (2 steps; imports, kernels,
allocator), then the timed run; processes alternate (engine, plain, plain, engine, ...). Reported per run:
samples/s over the epochs (the training epochs with their evaluations and checkpoints: from the first step
to the last epoch's end), samples/s of the steps alone (median optimizer-step interval, from torch's
global step hook), and peak RSS (``VmHWM``). The ratio plain / engine is the engine's cost (target
<= 1.1x). The machine's load is recorded at the start and the end; a busy machine's timings are fiction.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL = "emotion-av"
TARGET = 1.1  # plain / engine samples/s


def splits(actors: int) -> dict[str, list[int]]:
    """The last two actors validate (variant eval), every other one trains."""
    return {"train": list(range(1, actors - 1)), "val": [actors - 1, actors]}


def overrides(args: dict[str, Any], variant: str) -> list[str]:
    key = f"models.{MODEL}"
    split = splits(args["actors"])
    val = split["val"] if variant == "eval" else []
    return [
        f"{key}.data.split.train={split['train']}",
        f"{key}.data.split.val={val}",
        f"{key}.data.split.test=[]",
        f"{key}.train.epochs={args['epochs']}",
        f"{key}.train.batch_size={args['batch_size']}",
        f"{key}.train.seed=0",
    ]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**10
    raise SystemExit("no VmHWM in /proc/self/status: peak RSS needs Linux")


class StepTimes:
    """When every optimizer step ended (torch's global step hook: the engine's and the plain loop's alike)."""

    def __init__(self) -> None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.times: list[float] = []
        register_optimizer_step_post_hook(lambda *_: self.times.append(time.perf_counter()))

    def median_interval(self, first: int) -> float:
        times = self.times[first:]
        return statistics.median(b - a for a, b in zip(times, times[1:]))


# --- the engine ----------------------------------------------------------------------------------


def run_engine(spec: dict[str, Any], steps: StepTimes) -> dict[str, Any]:
    from rich.console import Console

    from lexiedge import training_runs
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile
    from lexiedge.train import engine

    marks: dict[str, float] = {}
    train_epochs, close_last_window = engine.Engine._train_epochs, engine.Engine._close_last_window

    def timed_epochs(self, *args):
        marks["start"] = time.perf_counter()
        return train_epochs(self, *args)

    def timed_close(self, *args):
        result = close_last_window(self, *args)
        marks["end"] = time.perf_counter()
        return result

    engine.Engine._train_epochs, engine.Engine._close_last_window = timed_epochs, timed_close

    def train(extra: list[str], run_dir: Path) -> None:
        profile = load_profile("cpu", overrides(spec, spec["variant"]) + extra, host=get_host())
        request = training_runs.TrainRequest(
            profile=profile,
            model_keys=[MODEL],
            data={MODEL: Path(spec["data"])},
            out=run_dir,
            resume=False,
            evaluate_test=False,
        )
        training_runs.train(request, Console(quiet=True))

    train([f"models.{MODEL}.train.max_steps=2"], Path(spec["run_dir"]) / "warmup")
    first = len(steps.times)
    train([], Path(spec["run_dir"]) / "timed")
    return {"epochs_s": marks["end"] - marks["start"], "first_step": first}


# --- the plain loop --------------------------------------------------------------------------------


def run_plain(spec: dict[str, Any], steps: StepTimes) -> dict[str, Any]:
    import copy

    import torch
    import torch.nn.functional as F
    from rich.console import Console
    from torch.utils.data import DataLoader

    from lexiedge.api import MODEL_INPUTS
    from lexiedge.cache import cache_dir
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile
    from lexiedge.train.device import seed_everything
    from lexiedge.train.optim import lr_at
    from lexiedge_runtime.tasks import av_classification as av_task

    host = get_host()
    entry = load_profile("cpu", overrides(spec, spec["variant"]), host=host).model(MODEL)
    settings = entry.train.settings
    if settings.mixup or settings.class_weights != "none":
        raise SystemExit(
            "the plain loop implements cross-entropy with label smoothing only (no mixup or weights)"
        )
    seed_everything(settings.seed)
    if spec.get("deterministic"):  # the engine turns deterministic kernels on for CPU runs (repeatability)
        torch.use_deterministic_algorithms(True, warn_only=True)
    plugin = host.models.get(entry.model.plugin)
    built = plugin.build(entry.model.settings, load_profile("cpu", [], host=host).device, pretrained=True)
    splits = host.datasets.get(entry.data.plugin).load(
        entry.data.settings,
        Path(spec["data"]),
        built=built,
        model_settings=entry.model.settings,
        cache_dir=cache_dir(),
        console=Console(quiet=True),
    )
    plugin.fit_to_data(built, splits, Console(quiet=True))
    model = built.module
    keys = tuple(built.extras.get(MODEL_INPUTS) or av_task.INPUT_NAMES)
    loader = DataLoader(
        splits.train,
        batch_size=settings.batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=splits.collate,
        generator=torch.Generator().manual_seed(settings.seed),
    )
    total = len(loader) * settings.epochs
    warmup_steps = round(settings.warmup_ratio * total)

    def optimizer_of(module):
        matrices = [p for p in module.parameters() if p.requires_grad and p.dim() >= 2]
        others = [p for p in module.parameters() if p.requires_grad and p.dim() < 2]
        groups = [
            {"params": matrices, "weight_decay": settings.weight_decay},
            {"params": others, "weight_decay": 0.0},
        ]
        try:
            return torch.optim.AdamW(groups, lr=settings.lr, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.AdamW(groups, lr=settings.lr)

    def step(module, optimizer, batch, lr: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr
        logits = module(*(batch[key] for key in keys))
        loss = F.cross_entropy(logits.float(), batch[av_task.LABEL], label_smoothing=settings.label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), settings.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def evaluate(module) -> dict[str, float]:
        module.eval()
        loss_sum, correct, count = 0.0, 0, 0
        with torch.no_grad():
            for batch in DataLoader(splits.val, batch_size=settings.batch_size, collate_fn=splits.collate):
                logits = module(*(batch[key] for key in keys)).float()
                labels = batch[av_task.LABEL]
                loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
                correct += int((logits.argmax(-1) == labels).sum())
                count += labels.numel()
        module.train()
        return {"loss": loss_sum / count, "accuracy": correct / count}

    # warm-up on a copy (the timed model starts from the same weights as the engine's)
    spare = copy.deepcopy(model).train()
    spare_optimizer = optimizer_of(spare)
    for _, batch in zip(range(2), loader):
        step(spare, spare_optimizer, batch, settings.lr)
    del spare, spare_optimizer
    first = len(steps.times)
    model.train()
    optimizer = optimizer_of(model)
    history, index = [], 0
    started = time.perf_counter()
    for _ in range(settings.epochs):
        for batch in loader:
            step(
                model, optimizer, batch, lr_at(index, settings.lr, total, warmup_steps, settings.min_lr_ratio)
            )
            index += 1
        if splits.val is not None and len(splits.val):
            history.append(evaluate(model))
    return {"epochs_s": time.perf_counter() - started, "first_step": first, "history": history}


def child(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(spec["threads"])
    steps = StepTimes()
    result = (run_engine if spec["runner"] == "engine" else run_plain)(spec, steps)
    timed = len(steps.times) - result["first_step"]
    samples = timed * spec["batch_size"]
    return {
        "runner": spec["runner"],
        "variant": spec["variant"],
        "steps": timed,
        "samples": samples,
        "samples_per_s": samples / result["epochs_s"],
        "step_samples_per_s": spec["batch_size"] / steps.median_interval(result["first_step"]),
        "epochs_s": result["epochs_s"],
        "peak_rss_mb": peak_rss_mb(),
        "torch_threads": torch.get_num_threads(),
    }


# --- the parent ------------------------------------------------------------------------------------


def prepare_data(args: argparse.Namespace, tmp: Path) -> Path:
    """A synth-av set (``lexiedge data synth-av``), its feature cache filled before anything is timed."""
    from rich.console import Console

    from lexiedge.cache import cache_dir
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile
    from lexiedge_ravdess.synth import SynthSpec, write_synthetic_set

    data = args.data or tmp / "synth-av"
    if args.data is None:
        write_synthetic_set(data, SynthSpec(actors=args.actors, clips_per_emotion=args.clips_per_emotion))
    host = get_host()
    spec = {"epochs": 1, "batch_size": args.batch_size, "actors": args.actors}
    entry = load_profile("cpu", overrides(spec, "eval"), host=host).model(MODEL)
    built = host.models.get(entry.model.plugin).build(
        entry.model.settings, load_profile("cpu", [], host=host).device
    )
    host.datasets.get(entry.data.plugin).load(
        entry.data.settings,
        data,
        built=built,
        model_settings=entry.model.settings,
        cache_dir=cache_dir(),
        console=Console(quiet=True),
    )
    return data


def run_child(spec: dict[str, Any], log: Path) -> dict[str, Any]:
    with open(log, "w") as handle:
        completed = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        raise SystemExit(
            f"{spec['runner']} ({spec['variant']}) failed (exit {completed.returncode}); log {log}:\n"
            + log.read_text()[-2000:]
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict[str, Any]], variants: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for variant in variants:
        rows = {}
        for runner in ("engine", "plain"):
            mine = [run for run in runs if run["variant"] == variant and run["runner"] == runner]
            rows[runner] = {
                "samples_per_s": statistics.median(r["samples_per_s"] for r in mine),
                "step_samples_per_s": statistics.median(r["step_samples_per_s"] for r in mine),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
                "runs_samples_per_s": [r["samples_per_s"] for r in mine],
            }
        plain, eng = rows["plain"], rows["engine"]
        rows["ratio_plain_over_engine"] = {
            "samples_per_s": plain["samples_per_s"] / eng["samples_per_s"],
            "step_samples_per_s": plain["step_samples_per_s"] / eng["step_samples_per_s"],
            "peak_rss": eng["peak_rss_mb"] / plain["peak_rss_mb"],
        }
        rows["target_met"] = rows["ratio_plain_over_engine"]["samples_per_s"] <= TARGET
        summary[variant] = rows
    return summary


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        "| variant | runner | samples/s (epochs) | samples/s (steps) | peak RSS MiB |",
        "|---|---|---:|---:|---:|",
    ]
    for variant, rows in summary.items():
        for runner in ("engine", "plain"):
            row = rows[runner]
            lines.append(
                f"| {variant} | {runner} | {row['samples_per_s']:.1f} | {row['step_samples_per_s']:.1f} "
                f"| {row['peak_rss_mb']:.0f} |"
            )
        ratio = rows["ratio_plain_over_engine"]
        lines.append(
            f"| {variant} | plain / engine | {ratio['samples_per_s']:.3f}x "
            f"| {ratio['step_samples_per_s']:.3f}x "
            f"| engine / plain {ratio['peak_rss']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:4]),
    )
    parser.add_argument(
        "--data", type=Path, help="a RAVDESS-layout folder with actors 1 to --actors (default: synth-av)"
    )
    parser.add_argument(
        "--actors",
        type=int,
        default=17,
        help="actors: the last two validate, the others train (default 17: 15 train, as many clips per epoch "
        "as the cpu profile's 16 RAVDESS training actors)",
    )
    parser.add_argument(
        "--clips-per-emotion",
        type=int,
        default=8,
        help="synth-av clips per actor and emotion (at most 8); with 15 training actors, 960 training clips: "
        "120 steps per epoch at batch 8, the cpu profile's epoch on RAVDESS, so that an epoch's checkpoint "
        "costs what it costs in a real run",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8, help="the cpu profile's")
    parser.add_argument(
        "--variants", default="train,eval", help="train (no validation split), eval (or both)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="processes per runner and variant, alternated")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--plain-deterministic",
        action="store_true",
        help="the plain loop also uses torch's deterministic kernels, as the engine does on the CPU",
    )
    parser.add_argument("--tiny", action="store_true", help="1 epoch, 1 repeat, 1 thread: checks the script")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.epochs, args.repeats, args.threads, args.actors, args.clips_per_emotion = 1, 1, 1, 10, 1
    unknown = [v for v in args.variants.split(",") if v not in ("train", "eval")]
    if unknown:
        parser.error(f"unknown --variants {unknown}; expected train, eval")
    if args.actors < 4:
        parser.error("--actors must be at least 4 (the last two validate)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    from lexiedge.latency.machine import RunLoad, busy_warning, sample

    start = sample()
    variants = args.variants.split(",")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-train-engine-") as tmp_name:
        tmp = Path(tmp_name)
        data = prepare_data(args, tmp)
        print(
            f"emotion-av (cpu profile), {data} ({args.clips_per_emotion} clips per actor and emotion), "
            f"{args.epochs} epochs, batch {args.batch_size}, "
            f"{args.threads} threads; {start.describe()}",
            flush=True,
        )
        order = 0
        for repeat in range(args.repeats):
            for variant in variants:
                runners = ("engine", "plain") if order % 2 == 0 else ("plain", "engine")
                order += 1
                for runner in runners:
                    spec = {
                        "runner": runner,
                        "variant": variant,
                        "data": str(data),
                        "epochs": args.epochs,
                        "batch_size": args.batch_size,
                        "actors": args.actors,
                        "threads": args.threads,
                        "deterministic": args.plain_deterministic,
                        "run_dir": str(tmp / f"{runner}-{variant}-{repeat}"),
                    }
                    result = run_child(spec, tmp / f"{runner}-{variant}-{repeat}.log")
                    runs.append(result)
                    print(
                        f"  {variant:5s} {runner:6s} {result['samples_per_s']:7.1f} samples/s "
                        "over the epochs, "
                        f"{result['step_samples_per_s']:7.1f} in steps, "
                        f"peak RSS {result['peak_rss_mb']:.0f} MiB",
                        flush=True,
                    )
    load = RunLoad(start, sample())
    summary = summarise(runs, variants)
    table = markdown(summary)
    print("\n" + table)
    warning = busy_warning(load)
    if warning:
        print(warning)
    if args.json:
        report = {
            "load": load.to_json(),
            "summary": summary,
            "runs": runs,
            "markdown": table,
            "target": TARGET,
            "steps_per_epoch": runs[0]["steps"] // args.epochs,
            "command": "python bench/bench_train_engine.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
        }
        tmp_path = args.json.with_name(f".{args.json.name}.tmp")
        tmp_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp_path, args.json)


if __name__ == "__main__":
    main()
