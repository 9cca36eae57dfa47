"""Every on-device format in one table (issue 29): build what it needs, then `lexiedge bench --all-formats`.

    python bench/bench_formats.py --out bench-results/formats          # the quiet-machine run
    python bench/bench_formats.py --tiny --out /tmp/formats-tiny       # a quick check of the pipeline

What it builds, with the commands a user types (each in a process of its own: a process that has just
exported times every backend slower, docs/benchmarks.md):
1. emotion-av: `lexiedge train --profile rtx3050-4gb` for 1 epoch on the real RAVDESS speech in
   ../shared/data/ravdess-speech (actors 1-12 train, 13-16 validation) when it is there, else on
   `lexiedge data synth-av` clips; then `lexiedge export` to every target an installed exporter offers for
   the task (onnx, onnx-int8, ort-mobile, executorch, executorch-int8, ... as registered), one at a time.
   A target that fails (its package missing, verification refused) is reported, not fatal.
2. qwen-lora: the cpu profile's tiny Qwen2 with LoRA, `lexiedge train` (a few steps), `lexiedge merge`,
   then every causal-lm target (onnx, onnx-int8, onnx-int4, ...).
3. `lexiedge bench --all-formats` over each model's artifacts (one process per model, interleaved),
   then ``formats.json`` (both reports, the build steps and their seconds) and ``formats.md``.

``--build-only`` stops after step 2: the build's timings do not matter, so it may run on a busy machine,
and the same command without it later reuses every run and artifact and only benchmarks (minutes).

``--tiny``: the cpu profile, 2 training steps on synthetic clips, relaxed int8 thresholds (two steps of
training give near-tied logits), few timed iterations. Its timings mean nothing; it checks the pipeline
and times the build. Outputs are cached in ``--work`` (reused when the step's output is there).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REAL_SPEECH = ROOT.parent / "shared" / "data" / "ravdess-speech"
AV, LM = "emotion-av", "qwen-lora"
REAL_SPLIT = f"models.{AV}.data.split={{train: {list(range(1, 13))}, val: [13, 14, 15, 16], test: []}}"
RELAXED = ("min_top1=0", "min_decisive_share=0", "max_uar_drop=1")  # --tiny: near-tied logits after 2 steps
LM_TINY = ("prompts=1", "new_tokens=4", "min_token_agreement=0", "min_decisive_share=0", "benchmark_tokens=0")


def lexiedge(*args: object, log: Path) -> tuple[int, float, str]:
    """`python -m lexiedge ARGS` in a new process: exit code, seconds, the last line it printed to stderr."""
    start = time.perf_counter()
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"\n$ lexiedge {' '.join(map(str, args))}\n")
        handle.flush()
        done = subprocess.run(
            [sys.executable, "-m", "lexiedge", *map(str, args)],
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        handle.write(done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return done.returncode, time.perf_counter() - start, lines[-1] if lines else ""


def targets_for(task: str) -> list[str]:
    """Every installed exporter that serves ``task`` (a new format's plugin appears here by itself)."""
    from lexiedge.plugin import get_host

    exporters = get_host().exporters
    return [name for name in exporters.names() if task in getattr(exporters.get_class(name), "tasks", ())]


def settings_of(target: str) -> set[str]:
    """The option names a target's exporter takes (--tiny passes only those it has)."""
    from lexiedge.plugin import get_host

    settings = getattr(get_host().exporters.get_class(target), "Settings", None)
    return set(getattr(settings, "model_fields", {}))


def sets(values: list[str]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


class Builder:
    def __init__(self, work: Path, tiny: bool) -> None:
        self.work, self.tiny = work, tiny
        self.log = work / "build.log"
        self.steps: list[dict[str, Any]] = []

    def step(self, what: str, output: Path, *args: object) -> bool:
        """Run one command unless ``output`` is already there; record it. True when ``output`` exists."""
        if output.exists():
            self.steps.append({"step": what, "status": "reused", "seconds": 0.0})
            return True
        code, seconds, last = lexiedge(*args, log=self.log)
        ok = code == 0 and output.exists()
        self.steps.append(
            {
                "step": what,
                "status": "ok" if ok else f"exit {code}",
                "seconds": round(seconds, 1),
                **({} if ok else {"error": last}),
            }
        )
        print(f"{what}: {'ok' if ok else 'FAILED (' + last + ')'} in {seconds:.0f} s", flush=True)
        return ok

    def emotion_av(self) -> list[Path]:
        profile = "cpu" if self.tiny else "rtx3050-4gb"
        overrides = [f"models.{AV}.train.max_steps=2"] if self.tiny else [f"models.{AV}.train.epochs=1"]
        if REAL_SPEECH.is_dir() and not self.tiny:
            data, overrides = REAL_SPEECH, [*overrides, REAL_SPLIT]
        else:
            data = self.work / "synth-av"
            if not self.step("synthetic data", data, "data", "synth-av", "--out", data, "--actors", "6"):
                return []
        run = self.work / f"run-{AV}-{profile}"
        if not self.step(
            f"train {AV} ({profile}, data {data.name})",
            run / "final",
            "train",
            "--profile",
            profile,
            "--model",
            AV,
            "--data",
            data,
            "--out",
            run,
            *sets(overrides),
        ):
            return []
        return self.export(AV, run, targets_for("av-classification"))

    def qwen_lora(self) -> list[Path]:
        run = self.work / f"run-{LM}-cpu"
        if not self.step(
            f"train {LM} (cpu, tiny Qwen2)",
            run / "final",
            "train",
            "--profile",
            "cpu",
            "--model",
            LM,
            "--out",
            run,
            *sets([f"models.{LM}.train.max_steps=4"]),
        ):
            return []
        merged = run / "merged"
        if not self.step(f"merge {LM}", merged, "merge", run):
            return []
        return self.export(LM, run, targets_for("causal-lm"))

    def export(self, model: str, run: Path, targets: list[str]) -> list[Path]:
        artifacts = []
        for target in targets:
            out = self.work / "artifacts" / model / target
            options = f"models.{model}.export.options.{target}"
            extra: list[str] = []
            if self.tiny:  # only the options this target's exporter takes
                wanted = (
                    LM_TINY if model == LM else ("max_val_clips=8", *(RELAXED if "int" in target else ()))
                )
                known = settings_of(target)
                extra = [f"{options}.{value}" for value in wanted if value.partition("=")[0] in known]
            if self.step(
                f"export {model} {target}",
                out / "manifest.json",
                "export",
                "--run",
                run,
                "--target",
                target,
                "--out",
                out,
                *sets(extra),
            ):
                artifacts.append(out)
        return artifacts


def bench(
    model: str, artifacts: list[Path], out: Path, tiny: bool, threads: int, log: Path
) -> dict[str, Any]:
    if not artifacts:
        return {"model": model, "error": "no artifact was built (see the build steps)"}
    timing = (
        ["--warmup", "2", "--iterations", "4", "--rounds", "2"]
        if tiny
        else ["--warmup", "10", "--iterations", "100", "--rounds", "20"]
    )
    if model == LM:
        timing = (
            ["--rounds", "1", "--prompt-tokens", "16", "--new-tokens", "8"]
            if tiny
            else ["--rounds", "3", "--prompt-tokens", "64", "--new-tokens", "64"]
        )
    code, seconds, last = lexiedge(
        "bench", "--all-formats", *artifacts, *timing, "--threads", threads, "--out", out / model, log=log
    )
    report_path = out / model / "formats.json"
    if code != 0 or not report_path.is_file():
        return {
            "model": model,
            "error": f"lexiedge bench exited {code}: {last}",
            "seconds": round(seconds, 1),
        }
    return {**json.loads(report_path.read_text(encoding="utf-8")), "seconds": round(seconds, 1)}


def write_markdown(out: Path, reports: list[dict[str, Any]], steps: list[dict[str, Any]]) -> Path:
    lines = ["# Every format, one table per model (bench/bench_formats.py)", ""]
    for report in reports:
        table = out / report["model"] / "formats.md"
        lines += [
            table.read_text(encoding="utf-8")
            if table.is_file()
            else f"## {report['model']}\n\n{report.get('error')}",
            "",
        ]
    failed = [step for step in steps if step["status"] not in ("ok", "reused")]
    if failed:
        lines += [
            "## Not built",
            "",
            *(f"- {step['step']}: {step['status']}, {step.get('error', '')}" for step in failed),
            "",
        ]
    path = out / "formats.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/formats"))
    parser.add_argument("--work", type=Path, default=None, help="runs and artifacts (default: OUT/work)")
    parser.add_argument("--tiny", action="store_true", help="quick pipeline check: timings mean nothing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default=f"{AV},{LM}", help="comma-separated: emotion-av, qwen-lora")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="train and export, then stop: build on a busy machine, bench later in a quiet slot (reused)",
    )
    args = parser.parse_args()
    out: Path = args.out
    work = args.work or out / "work"
    work.mkdir(parents=True, exist_ok=True)
    builder = Builder(work, args.tiny)
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in models if name not in (AV, LM)]
    if unknown:
        parser.exit(2, f"--models: unknown {', '.join(unknown)}; expected {AV} and/or {LM}\n")
    start = time.perf_counter()
    built = {model: builder.emotion_av() if model == AV else builder.qwen_lora() for model in models}
    build_seconds = time.perf_counter() - start
    if args.build_only:
        print(
            f"built in {build_seconds:.0f} s (see {builder.log}); the same command without --build-only "
            "reuses it and only benchmarks"
        )
        return
    reports = [
        bench(model, artifacts, out, args.tiny, args.threads, builder.log)
        for model, artifacts in built.items()
    ]
    summary = {
        "tiny": args.tiny,
        "build_seconds": round(build_seconds, 1),
        "steps": builder.steps,
        "reports": reports,
    }
    tmp = out / "formats.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    os.replace(tmp, out / "formats.json")
    print(
        f"wrote {out / 'formats.json'} and {write_markdown(out, reports, builder.steps)} "
        f"(build {build_seconds:.0f} s, bench {sum(r.get('seconds', 0) for r in reports):.0f} s)"
    )


if __name__ == "__main__":
    main()
