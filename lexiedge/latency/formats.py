"""`lexiedge bench --all-formats DIR...`: one table over every format and backend the artifacts run on here.

Like Ultralytics' ``yolo benchmark``, but each row also carries what verification recorded: per format
and backend, p50 / p99 latency (LLMs: decode tokens/s and time to first token), the model's size, the
max |logit difference| against eager PyTorch measured here on the benchmark's own clip, the manifest's
verification (passed, its max |difference|, the task metric before and after, its delta) and the
ratio to eager. The backends come from the artifacts themselves: each manifest's engine names its
runner (:mod:`lexiedge_runtime.tasks.registry`), OpenVINO runs every fp32 ``.onnx`` classifier, and
torch is the run the artifacts were exported from. A new format is a new runner registration and its
extra (:mod:`lexiedge_runtime.extras`); nothing here lists formats.

Everything runs in one process with `lexiedge bench`'s protocol (:mod:`lexiedge.latency.run`): every
backend is loaded and warmed up, then timed in interleaved rounds, so drift hits every row alike; the
machine's load is sampled at the start and the end. A format whose runtime is not installed is a row
naming the extra to install; one that fails to load is a row with the first line of its error.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lexiedge.latency.backends import OPENVINO, TORCH, ArtifactInfo, Backend, classifier_feeds, prompt_ids
from lexiedge.latency.machine import RunLoad, busy_warning
from lexiedge.latency.machine import sample as sample_load
from lexiedge.latency.run import (
    CAUSAL_LM,
    CLASSIFICATION,
    BackendResult,
    BenchSettings,
    _add_ratios,
    _classifier_backend,
    _lm_backend,
    _measure_classifiers,
    _measure_lms,
    _source_present,
    machine_info,
    read_artifacts,
)

EAGER = "pytorch eager"  # the torch row's format


@dataclass
class FormatRow:
    """One format on one backend: what the manifest says about it, and what this run measured."""

    format: str  # the artifact's target ("onnx-int8"), or EAGER
    backend: str  # the runner's bench name ("ort-int8", "executorch", "openvino", "torch")
    artifact: str | None
    status: str  # "measured", "not installed", "not available" or "failed"
    note: str = ""  # why a row was not measured, in one line
    size_bytes: int = 0
    verified: bool | None = None  # the manifest's verification.passed (None for torch)
    manifest_max_abs_diff: float | None = None  # verification's max |logit difference| (validation)
    agreement: float | None = None  # verification's agreement on decisive samples (top-1 or tokens)
    metric: dict[str, Any] = field(default_factory=dict)  # name, pytorch, artifact, delta
    max_abs_diff_vs_eager: float | None = None  # measured here, on the benchmark's clip
    ensemble_of: int | None = None  # a `lexiedge ensemble` artifact: its member count
    result: BackendResult | None = None

    @property
    def measured(self) -> bool:
        return self.result is not None


@dataclass
class FormatsReport:
    task: str
    model: str
    settings: BenchSettings
    inputs: dict[str, Any]
    rows: list[FormatRow]
    machine: dict[str, Any]
    created: str
    command: str = ""

    @property
    def baseline(self) -> str | None:
        measured = [row for row in self.rows if row.measured]
        return measured[0].backend if measured else None

    @property
    def busy_warning(self) -> str | None:
        return busy_warning(self.machine.get("load"))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "lexiedge-bench-formats",
            "format_version": 1,
            "created": self.created,
            "command": self.command,
            "task": self.task,
            "model": self.model,
            "baseline": self.baseline,
            "settings": asdict(self.settings),
            "inputs": self.inputs,
            "machine": self.machine,
            "busy_warning": self.busy_warning,
            "rows": [asdict(row) for row in self.rows],
        }


# --- which rows -----------------------------------------------------------------------------------


def missing_runtime(modules: Sequence[str]) -> str | None:
    """One line naming what to install when a runner's libraries cannot be imported here, else None."""
    from lexiedge_runtime.extras import DISTRIBUTION, extra_for_modules

    absent = [module for module in modules if not _importable(module)]
    if not absent:
        return None
    extra = extra_for_modules(absent)
    fix = f"pip install '{DISTRIBUTION}[{extra}]'" if extra else f"install {', '.join(absent)}"
    return f"{', '.join(absent)} not installed here: {fix}"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package
        return False


def _runner_libraries(info: ArtifactInfo) -> tuple[str, ...]:
    from lexiedge_runtime.tasks import runner_for

    entry = runner_for(info.manifest, str(info.directory))
    return tuple(entry.libraries)


def _verification(row: FormatRow, manifest: dict[str, Any]) -> FormatRow:
    report = manifest.get("verification") or {}
    numbers = report.get("validation", report)  # classifiers report per split; LLMs at the top
    row.verified = report.get("passed")
    diffs = numbers.get("max_abs_diff") or {}
    value = diffs.get("logits", next((v for v in diffs.values() if isinstance(v, (int, float))), None))
    row.manifest_max_abs_diff = value if isinstance(value, (int, float)) else None
    agreement = (numbers.get("decisive") or {}).get("agreement")
    row.agreement = agreement if isinstance(agreement, (int, float)) else None
    metric = numbers.get("task_metric") or {}
    row.metric = {key: metric.get(key) for key in ("name", "pytorch", "artifact", "delta") if key in metric}
    row.size_bytes = int(manifest.get("size_bytes") or 0)
    row.ensemble_of = (manifest.get("ensemble") or {}).get("count")
    if row.ensemble_of:  # its logits are log(mean of the members' probabilities): eager's are not comparable
        row.note = f"seed ensemble of {row.ensemble_of}: its logits are not one model's, so not compared with eager"
    return row


def _no_source_reason(info: ArtifactInfo) -> str:
    if info.manifest.get("ensemble"):  # `lexiedge ensemble`: several runs, none of them the reference
        return "a seed ensemble has no one source model; list a member's artifact first for its torch row"
    return "the source run is not on this machine"


def _is_onnx_graph(info: ArtifactInfo) -> bool:
    runtime = info.manifest.get("runtime") or {}
    return (
        info.task == CLASSIFICATION
        and info.target == "onnx"
        and not info.manifest.get("enrollment")
        and str(runtime.get("graph", "")).endswith(".onnx")
        and runtime.get("engine", "onnxruntime") == "onnxruntime"
    )


def plan_rows(infos: Sequence[ArtifactInfo]) -> list[tuple[FormatRow, ArtifactInfo | None]]:
    """Every row, in table order (torch first, then each artifact, OpenVINO after its .onnx), each paired
    with the artifact it runs (torch: None); rows that cannot run here already say why."""
    names: dict[str, int] = {}
    for info in infos:
        names[info.backend] = names.get(info.backend, 0) + 1
    planned: list[tuple[FormatRow, ArtifactInfo | None]] = []
    torch_row = FormatRow(EAGER, TORCH, None, "measured")
    if not _source_present(infos[0]):
        torch_row.status, torch_row.note = "not available", _no_source_reason(infos[0])
    elif not _importable("torch"):
        torch_row.status, torch_row.note = "not installed", "torch not installed here"
    planned.append((torch_row, None))
    openvinos = [info for info in infos if _is_onnx_graph(info)]
    for info in infos:
        backend = info.backend if names[info.backend] == 1 else f"{info.backend}:{info.directory.name}"
        row = _verification(FormatRow(info.target, backend, str(info.directory), "measured"), info.manifest)
        absent = missing_runtime(_runner_libraries(info))
        if absent:
            row.status, row.note = "not installed", absent
        planned.append((row, info))
        if info in openvinos:
            name = OPENVINO if len(openvinos) == 1 else f"{OPENVINO}:{info.directory.name}"
            vino = _verification(FormatRow(info.target, name, str(info.directory), "measured"), info.manifest)
            absent = missing_runtime(("openvino",))
            if absent:
                vino.status, vino.note = "not installed", absent
            planned.append((vino, info))
    return planned


# --- running --------------------------------------------------------------------------------------


def run_all_formats(
    paths: Sequence[Path], settings: BenchSettings, progress: Callable[[str], None] = lambda line: None
) -> FormatsReport:
    """Plan the rows, build and time every runnable one in one interleaved run, then fill in the rest."""
    from lexiedge_runtime.errors import first_line

    infos = read_artifacts(paths)  # one line (exit 2) for a folder that is not an artifact or mixed tasks
    start_load = sample_load()
    task = infos[0].task
    planned = plan_rows(infos)
    runnable = [(row, info) for row, info in planned if row.status == "measured"]
    by_name: dict[str, FormatRow] = {row.backend: row for row, _ in runnable}

    def failed(backend: Backend, exc: Exception) -> None:
        row = by_name[backend.name]
        row.status, row.note = "failed", f"failed to load or run: {first_line(exc)}"
        progress(f"{backend.name}: {row.note}")

    backends: list[Any] = []
    for row, info in runnable:
        try:
            if task == CLASSIFICATION:
                feeds = classifier_feeds(infos[0].manifest, settings.batch, settings.seed)
                backends.append(_classifier_backend(row.backend, info or infos[0], feeds, settings.threads))
            else:
                backends.append(_lm_backend(row.backend, info or infos[0], settings.threads))
        except Exception as exc:  # a runner whose import fails: a row, not the end of the run
            row.status, row.note = "failed", f"failed to start: {first_line(exc)}"
    if task == CLASSIFICATION:
        feeds = classifier_feeds(infos[0].manifest, settings.batch, settings.seed)
        inputs: dict[str, Any] = {name: list(array.shape) for name, array in feeds.items()}
        results = _measure_classifiers(backends, settings, progress, on_failure=failed)
    else:
        prompt = prompt_ids(infos[0].directory, settings.prompt_tokens)
        inputs = {
            "prompt_tokens": len(prompt),
            "new_tokens": settings.new_tokens,
            "batch": 1,
            "search": "greedy",
        }
        results = _measure_lms(backends, prompt, settings, progress, on_failure=failed)
    if results:
        _add_ratios(results, task)
    for result in results:
        by_name[result.name].result = result
        if by_name[result.name].backend == TORCH:
            by_name[result.name].size_bytes = result.model_bytes
    if task == CLASSIFICATION:
        _compare_with_eager(backends, results, by_name)
    machine = machine_info(settings.threads)
    machine["load"] = RunLoad(start_load, sample_load()).to_json()
    return FormatsReport(
        task,
        str(infos[0].manifest.get("model", "")),
        settings,
        inputs,
        [row for row, _ in planned],
        machine,
        time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def _compare_with_eager(
    backends: list[Any], results: list[BackendResult], rows: dict[str, FormatRow]
) -> None:
    """Max |logit difference| of every measured backend against eager PyTorch on the same clip."""
    measured = {result.name for result in results}
    live = [backend for backend in backends if backend.name in measured]
    eager = next((backend for backend in live if backend.name == TORCH), None)
    if eager is None:
        return
    reference = eager.logits()
    for backend in live:
        if not rows[backend.name].ensemble_of:
            rows[backend.name].max_abs_diff_vs_eager = float(np.abs(backend.logits() - reference).max())


def command_line(paths: Sequence[Path], report: FormatsReport) -> str:
    settings = report.settings
    words = ["lexiedge bench --all-formats", *map(str, paths), f"--threads {settings.threads}"]
    if report.task == CAUSAL_LM:
        words.append(
            f"--rounds {settings.llm_rounds} --prompt-tokens {settings.prompt_tokens} "
            f"--new-tokens {settings.new_tokens}"
        )
    else:
        words.append(
            f"--warmup {settings.warmup} --iterations {settings.iterations} --rounds {settings.rounds} "
            f"--batch {settings.batch} --seed {settings.seed}"
        )
    return " ".join(words)
