"""Training tokens/s with packed rows vs one padded example per row (qwen-lora, the bundled tutor set).

    python bench/bench_packing.py                          # mid-size random Qwen2 + LoRA, seq_len 512
    python bench/bench_packing.py --base tiny              # the cpu profile's own tiny:qwen2-tutor base
    python bench/bench_packing.py --threads 1 --rounds 12  # on a busy machine (see below)
    python bench/bench_packing.py --trainer-runs 0         # the step ratio only, no whole training runs

Both modes use the same model, LoRA, seq_len, micro-batch (rows) and seed, and the same train split of
lexiedge/samples/tutor_sample.jsonl (the same 383 examples); only
``models.qwen-lora.data.packing`` differs. Three measurements, all through the real plugins:

1. Compute efficiency, from the real datasets and collate: the share of the token slots each mode
   computes that are real tokens (the collate pads each batch to its longest row). This bounds what
   packing can gain by skipping padding alone.
2. The ratio (the headline): in one process, the real training step of each mode (the chat-jsonl
   dataset and collate, the causal-lm-lora trainer's loss through the engine's ``forward_backward``,
   gradient clipping, the engine's AdamW) on a model of its own, interleaved round by round (the order
   rotates), each mode running steps until ``--tokens-per-round`` real tokens per round. Tokens/s counts
   tokens that are not padding (as the trainer's own ``train/tokens_per_s``); the ratio is the median
   of the per-round ratios, so a load change on a shared machine hits both modes of a round alike.
3. Peak memory (and the trainer's own tokens/s): whole ``lexiedge train --profile cpu --model qwen-lora``
   runs (``lexiedge.training_runs.train``), one process per mode so each peak is its own: peak RSS
   (``VmHWM``; not ``ru_maxrss``, which after fork+exec keeps the parent's size) on the CPU,
   ``torch.cuda.max_memory_allocated`` (as the engine records it) on CUDA.

``--base mid`` is a random Qwen2 built here with the tutor tokenizer (hidden 256, 4 layers, 4 heads / 2 KV
heads, intermediate 1408: Qwen2.5's FFN ratio), big enough that matrix products dominate a step;
``--base tiny`` is the cpu profile's base (hidden 64, 2 layers), where per-step overhead and attention
weigh more. The micro-batch counts rows, so at the same ``--batch-size`` a packed step holds ~2.7x the
tokens of a padded one (seq_len 512, ~178-token examples); ``padding-matched`` (on by default) pads with a
micro-batch holding as many real tokens as a packed one, which separates what packing saves (padding)
from what a bigger step saves (per-step overhead); ``padding-max-length`` (on by default) pads every row
to ``--seq-len``, as ``padding="max_length"`` fine-tuning recipes and static-shape training do. On a machine shared with other jobs use
``--threads 1``: with 2 threads and more runnable processes than cores every parallel op waits for a
descheduled thread, a per-op cost that falsely favours the mode with fewer, larger steps.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = "qwen-lora"
MID_DIMS = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
            "intermediate_size": 1408}
TINY_BASE = "tiny:qwen2-tutor"
TARGET = 1.5


def overrides(base: str, seq_len: int, packing: bool, batch_size: int, epochs: int = 1) -> list[str]:
    key = f"models.{MODEL}"
    return [
        f"{key}.model.base={base}",
        f"{key}.model.seq_len={seq_len}",
        f"{key}.data.packing={'true' if packing else 'false'}",
        f"{key}.train.batch_size={batch_size}",
        f"{key}.train.epochs={epochs}",
        f"{key}.train.checkpoint_every=1000000",  # only the end-of-run checkpoint, after the timed steps
    ]


def build_base(kind: str, tmp: Path) -> str:
    """The ``model.base`` value: the profile's tiny tutor base, or a mid-size random Qwen2 built into ``tmp``."""
    if kind == "tiny":
        return TINY_BASE
    from lexiedge_qwen_lora.tiny import build_tiny_qwen2

    return str(build_tiny_qwen2(tmp / "mid-base", seed=0, **MID_DIMS))


# --- the real pieces of one mode -----------------------------------------------------------------


@dataclass
class Mode:
    """One mode's model, optimizer, data and an endless shuffled stream of its training batches."""

    name: str
    batch_size: int
    built: Any
    splits: Any
    task: Any
    optimizer: Any
    parameters: list
    batches: Any
    pad_id: int
    collate: Any


def load_mode(name: str, base: str, seq_len: int, batch_size: int) -> Mode:
    """``name``: packing, padding (to the longest row of each batch, the plugin's fallback), padding-matched
    (the same, with as many real tokens per step as packing) or padding-max-length (every row padded to
    ``seq_len``, what ``tokenizer(..., padding="max_length")`` recipes and static-shape training do)."""
    import dataclasses

    import torch
    from lexiedge_causal_lm.trainer import CausalLMTrainer
    from rich.console import Console
    from torch.utils.data import DataLoader

    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile
    from lexiedge.train.optim import build_optimizer

    profile = load_profile("cpu", overrides(base, seq_len, name == "packing", batch_size), host=get_host())
    entry = profile.model(MODEL)
    host = get_host()
    built = host.models.get(entry.model.plugin).build(entry.model.settings, profile.device)
    splits = host.datasets.get(entry.data.plugin).load(
        entry.data.settings, None, built=built, model_settings=entry.model.settings,
        cache_dir=Path(tempfile.gettempdir()), console=Console(quiet=True),
    )
    collate = splits.collate
    if name == "padding-max-length":
        collate = dataclasses.replace(collate, pad_to=seq_len)
    loader = DataLoader(splits.train, batch_size=batch_size, shuffle=True, collate_fn=collate, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    parameters = [p for p in built.module.parameters() if p.requires_grad]
    optimizer = build_optimizer(parameters, entry.train.settings, torch.device("cpu"))
    built.module.train()
    return Mode(name, batch_size, built, splits, CausalLMTrainer(), optimizer, parameters,
                itertools.chain.from_iterable(itertools.repeat(loader)), collate.pad_id, collate)


def compute_efficiency(mode: Mode) -> dict[str, float]:
    """Real tokens / token slots over one shuffled epoch of the real collate's batches."""
    import torch
    from lexiedge_causal_lm.trainer import real_token_count  # what the trainer's tokens/s counts
    from torch.utils.data import DataLoader

    loader = DataLoader(mode.splits.train, batch_size=mode.batch_size, shuffle=True,
                        collate_fn=mode.collate, drop_last=True, generator=torch.Generator().manual_seed(1))
    real = slots = steps = 0
    for batch in loader:
        real += real_token_count(batch, mode.pad_id)
        slots += batch["input_ids"].numel()
        steps += 1
    summary = mode.splits.summary
    return {"examples": summary["examples"]["train"], "rows": summary["rows"]["train"],
            "tokens": summary["tokens"]["train"], "slot_efficiency": real / slots, "tokens_per_step": real / steps}


def train_step(mode: Mode) -> int:
    """One optimizer step as the engine takes it; returns the real (non-padding) tokens it trained on."""
    import torch
    from lexiedge_causal_lm.trainer import real_token_count

    from lexiedge.train.engine import forward_backward

    batch = next(mode.batches)
    forward_backward(mode.task, mode.built, [batch], torch.device("cpu"), "fp32")
    torch.nn.utils.clip_grad_norm_(mode.parameters, 1.0)
    mode.optimizer.step()
    mode.optimizer.zero_grad(set_to_none=True)
    return real_token_count(batch, mode.pad_id)


def interleaved_rates(modes: list[Mode], rounds: int, tokens_per_round: int) -> dict[str, list[float]]:
    """Tokens/s of each mode in each round; the order of the modes rotates from round to round."""
    for mode in modes:  # warm-up: first-call allocations and lazy initialisation
        train_step(mode)
    rates: dict[str, list[float]] = {mode.name: [] for mode in modes}
    for index in range(rounds):
        shift = index % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            tokens, started = 0, time.perf_counter()
            while tokens < tokens_per_round:
                tokens += train_step(mode)
            rates[mode.name].append(tokens / (time.perf_counter() - started))
    return rates


# --- whole training runs, one process each (peak memory) ------------------------------------------


def measure_training_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Train once through the pipeline (in this, a fresh, process): the trainer's tokens/s and the peak memory."""
    import peft  # noqa: F401  imported before the baseline so every mode's baseline holds the same libraries
    import psutil
    import torch
    import transformers  # noqa: F401
    from rich.console import Console

    from lexiedge import training_runs
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile
    from lexiedge.rundir import read_history

    torch.set_num_threads(spec["threads"])
    baseline_mb = psutil.Process().memory_info().rss / 2**20
    chosen = overrides(spec["base"], spec["seq_len"], spec["packing"], spec["batch_size"])
    profile = load_profile("cpu", chosen, host=get_host())
    run_dir = Path(spec["run_dir"])
    request = training_runs.TrainRequest(profile=profile, model_keys=[MODEL], data={MODEL: None}, out=run_dir, resume=False)
    training_runs.train(request, Console(quiet=True))
    last = read_history(run_dir)[-1]
    if profile.device.kind == "cuda" and torch.cuda.is_available():
        peak_mb, memory_kind = float(last["peak_memory_mb"]), "CUDA max_memory_allocated"
    else:
        peak_mb, memory_kind = peak_rss_mb(), "peak RSS"
    return {"tokens_per_s": last["train/tokens_per_s"], "peak_mb": peak_mb, "baseline_mb": baseline_mb,
            "memory_kind": memory_kind, "steps": last["step"]}


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this process's own memory map.
    ``getrusage().ru_maxrss`` would be wrong here: exec records the forking parent's peak into it, so
    a child started by a big parent reports at least the parent's size.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    import resource  # macOS: no /proc; ru_maxrss is in bytes there

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_in_child(spec: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"training run ({spec['mode']}) failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- main ------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:6]))
    parser.add_argument("--base", choices=("mid", "tiny"), default="mid", help="model (see the module docstring)")
    parser.add_argument("--seq-len", type=int, default=512, help="row length; the rtx3050/t4 profiles use 512")
    parser.add_argument("--batch-size", type=int, default=8, help="micro-batch (rows) of both modes")
    parser.add_argument("--matched", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure padding with a micro-batch holding as many real tokens as a packed one")
    parser.add_argument("--max-length", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure padding every row to --seq-len (padding=\"max_length\" recipes)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds of the step measurement; 0 skips it")
    parser.add_argument("--tokens-per-round", type=int, default=8000, help="real tokens each mode trains per round")
    parser.add_argument("--trainer-runs", type=int, default=1,
                        help="whole training runs (1 epoch) per mode, for peak memory; 0 skips them")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def load_modes(args: argparse.Namespace, base: str) -> tuple[list[Mode], dict[str, dict[str, float]]]:
    """packing, padding and (with --matched) padding-matched, each with its compute efficiency."""
    modes = [load_mode("packing", base, args.seq_len, args.batch_size),
             load_mode("padding", base, args.seq_len, args.batch_size)]
    efficiency = {mode.name: compute_efficiency(mode) for mode in modes}
    if args.matched:
        per_row = efficiency["packing"]["tokens"] / efficiency["packing"]["rows"]
        per_example = efficiency["padding"]["tokens"] / efficiency["padding"]["rows"]
        matched = load_mode("padding", base, args.seq_len, max(1, round(args.batch_size * per_row / per_example)))
        matched.name = "padding-matched"
        modes.append(matched)
        efficiency[matched.name] = compute_efficiency(matched)
    if args.max_length:
        fixed = load_mode("padding-max-length", base, args.seq_len, args.batch_size)
        modes.append(fixed)
        efficiency[fixed.name] = compute_efficiency(fixed)
    for mode in modes:
        numbers = efficiency[mode.name]
        print(f"  {mode.name:16s} micro-batch {mode.batch_size:3d}: {numbers['examples']} train examples in "
              f"{numbers['rows']} rows, {numbers['tokens_per_step']:.0f} real tokens per step, "
              f"{numbers['slot_efficiency']:.1%} of the computed token slots are real", flush=True)
    bound = efficiency["packing"]["slot_efficiency"] / efficiency["padding"]["slot_efficiency"]
    print(f"  real-token share of computed slots, packing / padding: {bound:.2f}x (what skipping padding alone gives)")
    return modes, efficiency


def report_steps(modes: list[Mode], args: argparse.Namespace) -> dict[str, Any]:
    """The interleaved step measurement and its ratios (median of the per-round ratios)."""
    rates = interleaved_rates(modes, args.rounds, args.tokens_per_round)
    print(f"\ntraining steps, {args.rounds} interleaved rounds of >= {args.tokens_per_round} real tokens per mode "
          "(median tokens/s; real tokens, padding not counted):")
    for name, values in rates.items():
        print(f"  {name:16s} {statistics.median(values):9.0f} tokens/s   (rounds: "
              + " ".join(f"{value:.0f}" for value in values) + ")")
    ratios = {name: statistics.median(p / q for p, q in zip(rates["packing"], values))
              for name, values in rates.items() if name != "packing"}
    labels = {"padding": "padding to the longest row of each batch (the plugin's packing=false)",
              "padding-matched": "the same, micro-batch with as many real tokens as a packed step",
              "padding-max-length": f"every row padded to seq_len {args.seq_len}"}
    for name, ratio in ratios.items():
        verdict = "met" if ratio >= TARGET else "not met"
        print(f"  ratio packing / {name:18s}: {ratio:5.2f}x  target >= {TARGET}x {verdict}  ({labels[name]})")
    return {"rates": rates, "ratios": ratios}


def report_training_runs(modes: list[Mode], base: str, args: argparse.Namespace, tmp: Path) -> dict[str, list]:
    """Whole training runs per mode, interleaved, each in a process of its own."""
    print(f"\nwhole training runs (lexiedge train, 1 epoch, {args.trainer_runs} per mode, one process each):")
    modes = [mode for mode in modes if mode.name != "padding-max-length"]  # not a profile setting: no pipeline run
    runs: dict[str, list[dict[str, Any]]] = {mode.name: [] for mode in modes}
    for index in range(args.trainer_runs):
        for mode in modes if index % 2 == 0 else list(reversed(modes)):
            spec = {"mode": mode.name, "base": base, "seq_len": args.seq_len, "packing": mode.name == "packing",
                    "batch_size": mode.batch_size, "threads": args.threads,
                    "run_dir": str(tmp / f"run-{index}-{mode.name}")}
            result = run_in_child(spec)
            runs[mode.name].append(result)
            print(f"  {mode.name:16s} {result['tokens_per_s']:9.0f} tokens/s (trainer's, epoch incl. first step)  "
                  f"{result['memory_kind']} {result['peak_mb']:6.0f} MiB "
                  f"(+{result['peak_mb'] - result['baseline_mb']:.0f} MiB over the process after imports)", flush=True)
    return runs


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(measure_training_run(json.loads(args.child))))
        return

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-packing-") as tmp_name:
        tmp = Path(tmp_name)
        base = build_base(args.base, tmp)
        print(f"base {base} ({args.base}), seq_len {args.seq_len}, {args.threads} torch threads; "
              f"torch {torch.__version__}, {os.cpu_count()} CPUs", flush=True)
        modes, efficiency = load_modes(args, base)
        steps = report_steps(modes, args) if args.rounds else {}
        runs = report_training_runs(modes, base, args, tmp) if args.trainer_runs else {}
    if args.json:
        args.json.write_text(json.dumps({
            "args": {key: str(value) for key, value in vars(args).items()}, "base": base,
            "efficiency": efficiency, **steps, "training_runs": runs,
        }, indent=2) + "\n", encoding="utf-8")


# --- pytest-benchmark ------------------------------------------------------------------------------


def _tiny_mode(name: str):
    return load_mode(name, TINY_BASE, 512, 8)


def test_packed_training_step(benchmark) -> None:
    mode = _tiny_mode("packing")
    train_step(mode)
    assert benchmark.pedantic(train_step, args=(mode,), rounds=3, warmup_rounds=1) > 0


def test_padded_training_step(benchmark) -> None:
    mode = _tiny_mode("padding")
    train_step(mode)
    assert benchmark.pedantic(train_step, args=(mode,), rounds=3, warmup_rounds=1) > 0


if __name__ == "__main__":
    main()
