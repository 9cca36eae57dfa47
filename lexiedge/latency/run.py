"""`lexiedge bench`: latency of artifacts across backends, measured in one run on the same inputs.

    lexiedge bench artifacts/emotion-av/onnx artifacts/emotion-av/onnx-int8 --plot
    lexiedge bench artifacts/qwen-lora/onnx-int4 --backends torch,ort-int4 --new-tokens 32

Each artifact is benchmarked through the embeddable runtime (:func:`lexiedge.runtime.load`) with the
runner its manifest's engine registered, which names the backend (onnx -> "ort", onnx-int8 ->
"ort-int8", ...: :mod:`lexiedge_runtime.tasks.registry`), and "torch" is the
artifacts' source model in PyTorch eager mode, rebuilt through its model plugin (classifiers: the
run's profile and checkpoint) or with transformers (LLMs: the merged model directory).

How it measures: every backend is loaded and warmed up first (as nanoGPT's bench warms up before
timing), then the measured iterations run interleaved in rounds (lexiedge's own protocol) (the order rotates every round), so a burst of
load from other processes hits every backend alike; every backend uses the same intra-op thread
count and the same inputs; percentiles are over single iterations. Ratios are against the first
backend (torch by default). Peak memory is the resident memory a backend added while loading and
warming up (Linux: the VmHWM high-water mark, reset per backend).

Classifiers run on one seeded random clip of the manifest's clip length, frame count and image size
(batch ``--batch``); LLMs on a ``--prompt-tokens`` prompt followed by ``--new-tokens`` greedy tokens
with EOS suppressed, timed as prefill, time to first token and decode steps.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lexiedge.latency.backends import (
    OPENVINO,
    TORCH,
    ArtifactInfo,
    Backend,
    BenchError,
    ClassifierBackend,
    ArtifactLm,
    GenerationTiming,
    LmBackend,
    ArtifactClassifier,
    PeakMemory,
    TorchClassifier,
    TorchLm,
    classifier_feeds,
    classifier_source,
    percentiles_ms,
    prompt_ids,
)
from lexiedge.errors import UsageError
from lexiedge.latency.machine import RunLoad, busy_warning
from lexiedge.latency.machine import sample as sample_load
from lexiedge_runtime.tasks import AV_CLASSIFICATION as CLASSIFICATION
from lexiedge_runtime.tasks import CAUSAL_LM

SETTLE_S = 0.05  # pause between backends (see _settle)


@dataclass(frozen=True)
class BenchSettings:
    threads: int = 2
    warmup: int = 10  # classifier calls (LLMs: one short generation) before anything is timed
    iterations: int = 50  # timed classifier calls per backend
    rounds: int = 10  # classifier: iterations are split into this many interleaved rounds
    batch: int = 1
    seed: int = 0
    prompt_tokens: int = 64
    new_tokens: int = 32
    llm_rounds: int = 3  # full timed generations per LLM backend, interleaved


# --- choosing backends ------------------------------------------------------------------------------


def read_artifacts(paths: Sequence[Path]) -> list[ArtifactInfo]:
    """Every artifact's manifest, checked against its files; all of one task."""
    from lexiedge.runtime.artifact import open_artifact

    if not paths:
        raise UsageError(
            "lexiedge bench needs at least one artifact directory (written by `lexiedge export`)"
        )
    infos = []
    for path in paths:
        artifact = open_artifact(path)  # one line for a missing dir, a non-artifact or a changed file
        infos.append(ArtifactInfo(Path(path), artifact.manifest))
    tasks = sorted({info.task for info in infos})
    if len(tasks) > 1:
        listed = ", ".join(f"{info.directory} ({info.task})" for info in infos)
        raise BenchError(f"artifacts of different tasks cannot be compared in one bench: {listed}")
    if tasks[0] not in (CLASSIFICATION, CAUSAL_LM):
        raise BenchError(
            f"{infos[0].directory}: task {tasks[0]!r} has no benchmark (known: {CLASSIFICATION}, {CAUSAL_LM})"
        )
    return infos


def backend_names(infos: Sequence[ArtifactInfo]) -> list[tuple[str, ArtifactInfo | None]]:
    """(name, artifact) for torch and every artifact; a backend given by two artifacts is named by both dirs."""
    counts: dict[str, int] = {}
    for info in infos:
        counts[info.backend] = counts.get(info.backend, 0) + 1
    named: list[tuple[str, ArtifactInfo | None]] = [(TORCH, None)]
    for info in infos:
        name = info.backend if counts[info.backend] == 1 else f"{info.backend}:{info.directory.name}"
        named.append((name, info))
    return named


def on_request_backends(infos: Sequence[ArtifactInfo]) -> list[tuple[str, ArtifactInfo | None]]:
    """Backends run only when --backends names them: OpenVINO on each fp32 ``.onnx`` classifier (when the
    openvino package is installed; ``openvino`` or ``openvino:<dir>`` like the others)."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        return []
    graphs = [
        info
        for info in infos
        if info.task == CLASSIFICATION
        and info.target == "onnx"
        and str((info.manifest.get("runtime") or {}).get("graph", "")).endswith(".onnx")
    ]
    return [(OPENVINO if len(graphs) == 1 else f"{OPENVINO}:{info.directory.name}", info) for info in graphs]


def select_backends(
    available: list[tuple[str, ArtifactInfo | None]],
    wanted: Sequence[str] | None,
    on_request: Sequence[tuple[str, ArtifactInfo | None]] = (),
) -> list[tuple[str, ArtifactInfo | None]]:
    """The backends to run, in the order asked (default: torch, then the artifacts in the order given;
    ``on_request`` ones only when asked for)."""
    if not wanted:
        return available
    chosen: list[tuple[str, ArtifactInfo | None]] = []
    offered = [*available, *on_request]
    for name in wanted:
        matches = [item for item in offered if item[0] == name or item[0].split(":")[0] == name]
        if not matches:
            known = ", ".join(item[0] for item in offered)
            raise BenchError(f"--backends: no backend {name!r} for these artifacts; available: {known}")
        chosen += [item for item in matches if item not in chosen]
    return chosen


# --- running --------------------------------------------------------------------------------------


@dataclass
class BackendResult:
    name: str
    kind: str
    artifact: str | None
    model_bytes: int
    load_s: float
    peak_memory_bytes: int
    latency_ms: dict[str, float]  # classifier: one call; LLM: one decode step
    throughput: float  # classifier: clips/s; LLM: decode tokens/s
    throughput_unit: str
    generation: dict[str, float] = field(
        default_factory=dict
    )  # LLM: prefill_ms, ttft_ms, decode_tokens_per_s
    ratio: float = 1.0  # p50 latency (LLM: decode step) / the first backend's
    speedup: float = 1.0  # the first backend's p50 / this p50 (LLM: decode tokens/s ratio)


@dataclass
class BenchReport:
    task: str
    model: str
    settings: BenchSettings
    inputs: dict[str, Any]
    results: list[BackendResult]
    machine: dict[str, Any]
    created: str
    command: str = ""

    @property
    def baseline(self) -> str:
        return self.results[0].name

    @property
    def busy_warning(self) -> str | None:
        """One line when the machine was busy at the start or the end of the run (see latency.machine)."""
        return busy_warning(self.machine.get("load"))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "lexiedge-bench",
            "format_version": 1,
            "created": self.created,
            "command": self.command,
            "task": self.task,
            "model": self.model,
            "baseline": self.baseline,
            "settings": asdict(self.settings),
            "inputs": self.inputs,
            "machine": self.machine,
            "backends": [asdict(result) for result in self.results],
        }


def run_bench(
    paths: Sequence[Path],
    settings: BenchSettings,
    wanted: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> BenchReport:
    """Load every chosen backend, warm it up, then measure them interleaved (see the module doc)."""
    infos = read_artifacts(paths)
    start_load = sample_load()  # before any backend loads: how busy the machine was without us
    task = infos[0].task
    available = backend_names(infos)
    explicit = bool(wanted)
    chosen = select_backends(available, wanted, on_request_backends(infos))
    sources = {_source_key(info) for info in infos}
    if len(sources) > 1 and any(name == TORCH for name, _ in chosen):
        progress(
            f"the artifacts come from {len(sources)} different sources; torch runs that of {infos[0].directory}"
        )
    if not explicit and not _source_present(infos[0]):  # torch by default only when its source is still there
        chosen = [item for item in chosen if item[0] != TORCH]
        progress(
            f"torch left out: the source model of {infos[0].directory} (manifest source) is not on this machine"
        )
    if task == CLASSIFICATION:
        feeds = classifier_feeds(infos[0].manifest, settings.batch, settings.seed)
        backends = [
            _classifier_backend(name, info or infos[0], feeds, settings.threads) for name, info in chosen
        ]
        inputs = {name: list(array.shape) for name, array in feeds.items()}
        results = _measure_classifiers(backends, settings, progress)
    else:
        first_artifact = next((info for _, info in chosen if info is not None), infos[0])
        prompt = prompt_ids(first_artifact.directory, settings.prompt_tokens)
        backends = [_lm_backend(name, info or infos[0], settings.threads) for name, info in chosen]
        inputs = {
            "prompt_tokens": len(prompt),
            "new_tokens": settings.new_tokens,
            "batch": 1,
            "search": "greedy",
        }
        results = _measure_lms(backends, prompt, settings, progress)
    _add_ratios(results, task)
    machine = machine_info(settings.threads)
    machine["load"] = RunLoad(start_load, sample_load()).to_json()
    return BenchReport(
        task,
        str(infos[0].manifest.get("model", "")),
        settings,
        inputs,
        results,
        machine,
        time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def command_line(paths: Sequence[Path], report: BenchReport) -> str:
    """The `lexiedge bench` command that reproduces ``report``, every setting spelt out."""
    settings = report.settings
    backends = ",".join(dict.fromkeys(result.name.split(":")[0] for result in report.results))
    words = ["lexiedge bench", *map(str, paths), f"--backends {backends} --threads {settings.threads}"]
    if report.task == CAUSAL_LM:
        words.append(f"--rounds {settings.llm_rounds} --prompt-tokens {settings.prompt_tokens} "
                     f"--new-tokens {settings.new_tokens}")
    else:
        words.append(f"--warmup {settings.warmup} --iterations {settings.iterations} --rounds {settings.rounds} "
                     f"--batch {settings.batch} --seed {settings.seed}")
    return " ".join(words)


def _source_key(info: ArtifactInfo) -> str:
    source = info.source
    return str(source.get("checkpoint_file") or source.get("merged_model") or source.get("run"))


def _source_present(info: ArtifactInfo) -> bool:
    try:
        if info.task == CLASSIFICATION:
            classifier_source(info)
        else:
            merged = info.source.get("merged_model")
            return bool(merged) and (Path(merged) / "config.json").is_file()
    except BenchError:
        return False
    return True


def _classifier_backend(
    name: str, info: ArtifactInfo, feeds: dict[str, np.ndarray], threads: int
) -> ClassifierBackend:
    if name == TORCH:
        return TorchClassifier(name, info, feeds, threads)
    if name.split(":")[0] == OPENVINO:
        return ArtifactClassifier(name, info, feeds, threads, device=OPENVINO, kind=OPENVINO)
    return ArtifactClassifier(name, info, feeds, threads)


def _lm_backend(name: str, info: ArtifactInfo, threads: int) -> LmBackend:
    return TorchLm(name, info, threads) if name == TORCH else ArtifactLm(name, info, threads)


def _load(backend: Backend, warm_up: Callable[[], Any], progress: Callable[[str], None]) -> tuple[float, int]:
    """Load time, and the peak resident memory the backend added while loading and warming up."""
    progress(f"loading {backend.name}")
    with PeakMemory() as memory:
        start = time.perf_counter()
        backend.load()
        load_s = time.perf_counter() - start
        warm_up()
    return load_s, memory.bytes


LoadFailure = Callable[[Backend, Exception], None]


def _load_all(backends: list[Any], warm_up: Callable[[Any], Any], progress: Callable[[str], None],
              on_failure: LoadFailure | None) -> tuple[list[Any], dict[str, tuple[float, int]]]:
    """Load and warm up every backend; with ``on_failure``, one that fails is reported there and left out
    (`bench --all-formats`: one format that cannot run is a row, not the end of the run)."""
    kept, loaded = [], {}
    for backend in backends:
        try:
            loaded[backend.name] = _load(backend, lambda b=backend: warm_up(b), progress)
        except Exception as exc:
            if on_failure is None:
                raise
            on_failure(backend, exc)
            continue
        kept.append(backend)
    return kept, loaded


def _measure_classifiers(
    backends: list[ClassifierBackend], settings: BenchSettings, progress: Callable[[str], None],
    on_failure: LoadFailure | None = None,
) -> list[BackendResult]:
    backends, loaded = _load_all(
        backends, lambda b: [b() for _ in range(settings.warmup)], progress, on_failure
    )
    if not backends:
        return []
    samples: dict[str, list[float]] = {backend.name: [] for backend in backends}
    rounds = max(1, min(settings.rounds, settings.iterations))
    per_round = [
        settings.iterations // rounds + (1 if r < settings.iterations % rounds else 0) for r in range(rounds)
    ]
    progress(
        f"measuring {len(backends)} backends: {settings.iterations} calls each in {rounds} interleaved rounds"
    )
    for round_index, count in enumerate(per_round):
        for backend in _rotated(backends, round_index):
            _settle()
            backend()  # untimed: the previous backend's working set left the caches
            for _ in range(count):
                start = time.perf_counter()
                backend()
                samples[backend.name].append(time.perf_counter() - start)
    results = []
    for backend in backends:
        latency = percentiles_ms(samples[backend.name])
        results.append(_result(backend, loaded[backend.name], latency, settings.batch * 1e3 / latency["mean"],
                               "clips/s"))
    return results


def _measure_lms(
    backends: list[LmBackend], prompt: list[int], settings: BenchSettings, progress: Callable[[str], None],
    on_failure: LoadFailure | None = None,
) -> list[BackendResult]:
    # warm-up: one short generation (allocations, thread pools, kernels)
    backends, loaded = _load_all(
        backends, lambda b: b.generate(prompt[:8], min(4, settings.new_tokens)), progress, on_failure
    )
    if not backends:
        return []
    timings: dict[str, list[GenerationTiming]] = {backend.name: [] for backend in backends}
    progress(
        f"measuring {len(backends)} backends: {settings.llm_rounds} generations each, "
        f"{len(prompt)} prompt + {settings.new_tokens} new tokens"
    )
    for round_index in range(settings.llm_rounds):
        for backend in _rotated(backends, round_index):
            _settle()
            timings[backend.name].append(backend.generate(prompt, settings.new_tokens))
    results = []
    for backend in backends:
        runs = timings[backend.name]
        steps = [step for run in runs for step in run.steps_s]
        decode_rate = len(steps) / sum(steps) if steps else 0.0
        generation = {
            "prefill_ms": 1e3 * statistics.median(run.prefill_s for run in runs),
            "ttft_ms": 1e3 * statistics.median(run.ttft_s for run in runs),
            "prefill_tokens_per_s": len(prompt) / statistics.median(run.prefill_s for run in runs),
            "decode_tokens_per_s": decode_rate,
        }
        results.append(_result(backend, loaded[backend.name], percentiles_ms(steps or [0.0]), decode_rate,
                               "tokens/s", generation))
    return results


def _result(backend: Backend, loaded: tuple[float, int], latency: dict[str, float], throughput: float,
            unit: str, generation: dict[str, float] | None = None) -> BackendResult:
    """One backend's row: what it is, its load time and peak memory (:func:`_load`), then its numbers."""
    load_s, memory = loaded
    return BackendResult(backend.name, backend.kind, _str(backend.artifact), backend.model_bytes, load_s,
                         memory, latency, throughput=throughput, throughput_unit=unit,
                         generation=generation or {})


def _settle() -> None:
    """Let the previous backend's worker threads stop spinning (ORT and OpenMP spin-wait after a run)
    before the next backend is timed: on 2 cores they would otherwise take its CPU."""
    time.sleep(SETTLE_S)


def _rotated(items: list[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return items[shift:] + items[:shift]


def _add_ratios(results: list[BackendResult], task: str) -> None:
    first = results[0]
    for result in results:
        result.ratio = (
            result.latency_ms["p50"] / first.latency_ms["p50"] if first.latency_ms["p50"] else float("nan")
        )
        if task == CAUSAL_LM:
            base = first.generation.get("decode_tokens_per_s") or 0.0
            result.speedup = (
                result.generation.get("decode_tokens_per_s", 0.0) / base if base else float("nan")
            )
        else:
            result.speedup = 1.0 / result.ratio if result.ratio else float("nan")


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def machine_info(threads: int) -> dict[str, Any]:
    from lexiedge.export import library_versions

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "load_average_1m": round(load[0], 2)
        if load
        else None,  # > cpu_count: timings are shared-machine numbers
        "versions": library_versions(),
    }
