"""`lexiedge demo`: the whole pipeline, offline, on the CPU, in a few minutes.

Every step is a `lexiedge` command a user could type, run in this process and printed before it
runs, so any step can be repeated by hand from the report:

    data synth-av -> train emotion-av -> train qwen-lora -> merge -> export (onnx, int8, int4)
    -> bench -> the embeddable runtime on a held-out clip and on a tutor prompt -> report

Everything lands under one directory (``lexiedge-demo/`` by default). ``--quick`` trims epochs,
verification prompts and benchmark iterations (CI runs it); the code path is the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lexiedge.errors import LexiedgeError, UsageError
from lexiedge.latency.machine import busy_warning
from lexiedge.rundir import merged_dir, read_history, read_test_metrics

PROFILE = "cpu"
SYNTH_ACTORS = 6  # actors 1-4 train, 5 validates, 6 is the held-out test actor
SYNTH_CLIPS_PER_EMOTION = 4  # 32 held-out clips: a score that one clip does not swing by 0.06
TEST_ACTOR = 6
AV_TARGETS = ("onnx", "onnx-int8")
LM_TARGETS = ("onnx", "onnx-int8", "onnx-int4")
DEMO_PROMPT = "Please correct this sentence: She go to school yesterday."


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs: the profile's settings, trimmed by ``quick``."""

    out: Path
    quick: bool

    @property
    def av_overrides(self) -> list[str]:
        # quick trains emotion-av as the profile does: with half the epochs one seed x thread cell of
        # bench/bench_learning_sweep.py fell to 0.41 test UAR; the profile's 40 epochs hold (worst cell 0.59)
        return []

    @property
    def lm_overrides(self) -> list[str]:
        return ["models.qwen-lora.train.epochs=1"] if self.quick else []

    def export_overrides(self, model: str, target: str) -> list[str]:
        if not self.quick or model != "qwen-lora":
            return []
        options = ["prompts=2", "new_tokens=8"] + (["benchmark_tokens=0"] if target == "onnx-int4" else [])
        return [f"models.qwen-lora.export.options.{target}.{option}" for option in options]

    @property
    def bench_options(self) -> list[str]:
        if self.quick:
            return ["--warmup", "2", "--iterations", "5", "--rounds", "2", "--new-tokens", "8"]
        return []


@dataclass
class DemoReport:
    """What the report prints: paths and the numbers each step produced."""

    out: Path
    steps: list[tuple[str, float]] = field(default_factory=list)  # (command, seconds)
    paths: dict[str, Path] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)


def run_demo(out: Path, *, quick: bool, force: bool, console: Console,
             lexiedge: Callable[[list[str]], int]) -> DemoReport:
    """Run every step into ``out`` (refused if it exists and is not empty, unless ``force``).

    ``lexiedge`` runs one command line and returns its exit code: the CLI passes its own ``main``, so
    the demo runs exactly what a user would type and the core never imports the front end.
    """
    if out.exists() and any(out.iterdir()):
        if not force:
            raise UsageError(f"{out} exists and is not empty; pass --force to replace it or --out another directory")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = DemoPlan(out, quick)
    report = DemoReport(out)
    run = _runner(report, console, lexiedge)

    data, av_run, lm_run = out / "data" / "synth-av", out / "runs" / "emotion-av", out / "runs" / "qwen-lora"
    artifacts = out / "artifacts"
    run(["data", "synth-av", "--out", str(data), "--actors", str(SYNTH_ACTORS),
         "--clips-per-emotion", str(SYNTH_CLIPS_PER_EMOTION)])
    run(["train", "--profile", PROFILE, "--model", "emotion-av", "--data", str(data), "--out", str(av_run),
         *_sets(plan.av_overrides)])
    run(["train", "--profile", PROFILE, "--model", "qwen-lora", "--out", str(lm_run), *_sets(plan.lm_overrides)])
    run(["merge", str(lm_run)])
    for model, source, targets in (("emotion-av", av_run, AV_TARGETS), ("qwen-lora", lm_run, LM_TARGETS)):
        for target in targets:
            run(["export", "--run", str(source), "--target", target, "--out", str(artifacts / model / target),
                 *_sets(plan.export_overrides(model, target))])
    av_artifacts = [artifacts / "emotion-av" / t for t in AV_TARGETS]
    lm_artifacts = [artifacts / "qwen-lora" / t for t in LM_TARGETS]
    # bench in a process of its own: this one has trained and exported, and a backend loaded into its warm
    # heap adds almost no resident memory (peak 1/0/0 MB here against 36/18/6 for `lexiedge bench` alone)
    run(["bench", *map(str, av_artifacts), "--out", str(out / "bench" / "emotion-av"), *plan.bench_options],
        own_process=True)
    run(["bench", str(lm_artifacts[0]), str(lm_artifacts[-1]), "--out", str(out / "bench" / "qwen-lora"),
         *plan.bench_options], own_process=True)
    clip = _held_out_clip(data)
    run(["infer", str(av_artifacts[-1]), str(clip)])
    run(["infer", str(lm_artifacts[-1]), "--prompt", DEMO_PROMPT, "--max-new-tokens", "48"])

    report.paths.update(data=data, av_run=av_run, lm_run=lm_run, merged=merged_dir(lm_run), artifacts=artifacts,
                        bench=out / "bench", clip=clip)
    _collect(report, av_run, lm_run, av_artifacts + lm_artifacts, clip)
    return report


def _sets(overrides: list[str]) -> list[str]:
    return [item for override in overrides for item in ("--set", override)]


def _runner(report: DemoReport, console: Console, lexiedge: Callable[[list[str]], int]):
    def run(argv: list[str], own_process: bool = False) -> None:
        """Run one step; ``own_process``: as a new ``python -m lexiedge`` process, as a user would."""
        command = "lexiedge " + " ".join(argv)
        console.rule(f"[bold]$ {command}", align="left")
        started = time.perf_counter()
        if own_process:
            from lexiedge.console import output_flags

            console.file.flush()
            code = subprocess.run([sys.executable, "-m", "lexiedge", *output_flags(), *argv], check=False).returncode
        else:
            code = lexiedge(argv)
        report.steps.append((command, time.perf_counter() - started))
        if code != 0:
            raise LexiedgeError(f"demo step failed (exit {code}): {command}")

    return run


def _held_out_clip(data: Path) -> Path:
    """The first audio-video clip of the test actor (the model never saw this actor)."""
    clips = sorted((data / f"Actor_{TEST_ACTOR:02d}").glob("*.mp4"))
    if not clips:
        raise LexiedgeError(f"no clip of the test actor under {data}")
    return clips[0]


def _collect(report: DemoReport, av_run: Path, lm_run: Path, artifacts: list[Path], clip: Path) -> None:
    """Numbers for the report, read back from what the steps wrote (and the runtime, run once more)."""
    import lexiedge.runtime as rt
    from lexiedge.plugin import get_host

    test = read_test_metrics(av_run)
    report.numbers["emotion-av test"] = {"uar": test["uar"], "war": test["war"], "clips": test["samples"]}
    history = read_history(lm_run)
    report.numbers["qwen-lora val loss"] = [row["val/loss"] for row in history if "val/loss" in row]
    report.numbers["artifacts"] = {
        str(artifact): rt.read_manifest(artifact) for artifact in artifacts
    }
    report.numbers["bench"] = {
        model: json.loads((report.out / "bench" / model / "bench.json").read_text())
        for model in ("emotion-av", "qwen-lora")
    }
    # the embeddable runtime, as an app would call it: every held-out clip through the int8 artifact
    int8 = artifacts[len(AV_TARGETS) - 1]
    classifier = rt.load(int8, device="cpu")
    preprocessing = classifier.manifest["preprocessing"]
    data_plugin = get_host().datasets.get(preprocessing["data_plugin"])
    clips = sorted(clip.parent.glob("*.mp4"))
    correct, example = 0, None
    for path in clips:
        result = classifier.predict_file(path)  # decoded as the evaluation data was (the manifest's record)
        expected = data_plugin.label_of(path)
        correct += int(result.label == expected)
        if path == clip:
            example = {"file": path.name, "predicted": result.label, "expected": expected,
                       "p": result.probabilities[result.label]}
    report.numbers["runtime clips"] = {"correct": correct, "of": len(clips), "example": example}
    report.paths["tutor"] = artifacts[-1]
    tutor = rt.load(artifacts[-1], device="cpu")
    answer = tutor.generate([{"role": "user", "content": DEMO_PROMPT}], max_new_tokens=48)
    report.numbers["prompt"] = {"prompt": DEMO_PROMPT, "answer": answer.text, "tokens": len(answer.token_ids)}


def render_report(report: DemoReport, console: Console) -> None:
    """The short report: what was built, how good it is, how fast it runs, and where it all is."""
    from lexiedge.export import human_size, verification_summary

    numbers = report.numbers
    console.rule("[bold]lexiedge demo: report", align="left")
    table = Table("stage", "result", f"where (under {report.out})")
    table.columns[0].no_wrap = table.columns[2].no_wrap = True

    def where(path: Path) -> str:
        return str(Path(path).relative_to(report.out)) if Path(path).is_relative_to(report.out) else str(path)

    test = numbers["emotion-av test"]
    table.add_row("train emotion-av", f"test UAR {test['uar']:.3f}, WAR {test['war']:.3f} on {test['clips']} "
                  f"clips of an unseen actor (chance 0.125)", where(report.paths["av_run"]))
    losses = numbers["qwen-lora val loss"]
    loss_text = (f"val loss {losses[0]:.3f} -> {losses[-1]:.3f}" if len(losses) > 1
                 else f"val loss {losses[0]:.3f} (one evaluation)" if losses else "-")
    table.add_row("train qwen-lora", loss_text,
                  where(report.paths["lm_run"]))
    table.add_row("merge", "adapter folded into the base (merge.json)", where(report.paths["merged"]))
    for path, manifest in numbers["artifacts"].items():
        table.add_row(f"export {manifest['model']} {manifest['target']}",
                      f"{human_size(manifest['size_bytes'])}; {verification_summary(manifest.get('verification', {}))}", where(Path(path)))
    for model, bench in numbers["bench"].items():
        table.add_row(f"bench {model}", _bench_summary(bench), where(report.paths["bench"] / model / "bench.md"))
    clips = numbers["runtime clips"]
    example = clips["example"] or {}
    table.add_row("runtime: clips", f"{clips['correct']}/{clips['of']} held-out clips right; {example.get('file')}: "
                  f"{example.get('predicted')} (expected {example.get('expected')})", where(report.paths["clip"].parent))
    prompt = numbers["prompt"]
    table.add_row("runtime: tutor", f"{prompt['prompt']!r} -> {prompt['answer'][:120]!r} (the cpu profile's tiny "
                  "Qwen2, trained here in seconds, shows the path, not a tutor: the t4-16gb and rtx3050-4gb profiles "
                  "train Qwen2.5-0.5B-Instruct)", where(report.paths["tutor"]) if "tutor" in report.paths else "")
    # A terminal wraps the cells to its width; a pipe or file (CI logs) has none, and rich's 80-column
    # default would squeeze the result column to a word per line.
    wide = console if console.is_terminal else Console(file=console.file, width=max(console.width, 160))
    wide.print(table)
    total = sum(seconds for _, seconds in report.steps)
    console.print(f"{len(report.steps)} steps in {total:.0f} s; everything is under {report.out}")


def _bench_summary(bench: dict[str, Any]) -> str:
    """Each backend's p50 latency (LLM: decode tokens/s) and its speed-up over the first backend."""
    parts = []
    for result in bench.get("backends", []):
        if result.get("throughput_unit", "").startswith("tok"):
            headline = f"{result['throughput']:.0f} tok/s"
        else:
            headline = f"p50 {result['latency_ms']['p50']:.1f} ms"
        parts.append(f"{result['name']} {headline} ({result['speedup']:.2f}x)")
    summary = "; ".join(parts) or "see bench.md"
    warning = busy_warning((bench.get("machine") or {}).get("load"))
    return f"{summary}; WARNING: {warning}" if warning else summary
