"""The backends `lexiedge bench` times, and how: one forward of a classifier, one greedy generation.

A classifier backend is called with the benchmark's fixed clip (``backend()``); an LLM backend
generates (``backend.generate(prompt, new_tokens)`` -> :class:`GenerationTiming`). Libraries are
imported when a backend is made, so ``load()`` times the model's loading only. An artifact runs
through the embeddable runtime (:func:`lexiedge.runtime.load`), on the runner its manifest's engine
registered (:mod:`lexiedge_runtime.tasks.registry`), which also names the backend ("ort-int8"): a new
export format is benchmarked without a change here. "torch" rebuilds the source model (classifier:
through its model plugin from the run's profile and checkpoint; LLM: the merged model directory with
transformers, eager attention, fp32). Both LLM kinds are timed by :func:`timed_generation` over a
step iterator; :mod:`bench` (bench/bench_llm_decode.py) times with the same functions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from lexiedge_runtime.generator import genai_greedy_steps
from lexiedge_runtime.tasks import runner_for
from lexiedge_runtime.tasks.av_classification import ClassifierSpec, example_feeds

from lexiedge.errors import LexiedgeError
from lexiedge.rundir import WEIGHTS, is_run_dir
from lexiedge.runtime.artifact import Artifact

TORCH = "torch"
OPENVINO = "openvino"  # a backend of fp32 .onnx classifiers, benchmarked when --backends names it
PROMPT_TEXT = (
    "Correct the grammar of this sentence and explain the change in one short line: "
    "she go to school every days and she like the math lessons very much. "
)


class BenchError(LexiedgeError):
    """A benchmark that cannot run as asked (bad backend names, artifacts of different tasks, ...)."""

    exit_code = 2


# --- timings --------------------------------------------------------------------------------------


@dataclass
class GenerationTiming:
    """One greedy generation: prompt forward, first token, then one entry per further token."""

    prefill_s: float
    ttft_s: float
    steps_s: list[float]


def percentiles_ms(samples_s: Sequence[float]) -> dict[str, float]:
    values = np.asarray(samples_s, dtype=np.float64) * 1e3
    return {
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "min": float(values.min()),
    }


def timed_generation(steps: Iterator[Any]) -> GenerationTiming:
    """Time a greedy generation's step iterator: the first ``next`` prefills the prompt, the second yields
    the first token, each further one a decode step (the runners' ``greedy_steps`` and :func:`hf_steps`)."""
    start = time.perf_counter()
    next(steps)
    prefill = time.perf_counter() - start
    next(steps)
    ttft = time.perf_counter() - start
    durations = []
    while True:
        step = time.perf_counter()
        if next(steps, _DONE) is _DONE:
            break
        durations.append(time.perf_counter() - step)
    return GenerationTiming(prefill, ttft, durations)


_DONE = object()


def genai_generation(model: Any, prompt: Sequence[int], new_tokens: int) -> GenerationTiming:
    """Greedy generation through onnxruntime-genai (KV cache in ORT), EOS suppressed so every step runs."""
    return timed_generation(genai_greedy_steps(model, prompt, new_tokens))


def hf_steps(model: Any, prompt: Sequence[int], new_tokens: int) -> Iterator[Any]:
    """Greedy generation with a transformers model (KV cache on), one forward per new token, as steps."""
    import torch

    with torch.inference_mode():
        out = model(torch.tensor([list(prompt)]), use_cache=True)
        yield None
        token = out.logits[:, -1:].argmax(-1)
        yield token.item()  # the first token exists on the host
        cache = out.past_key_values
        for _ in range(new_tokens - 1):
            out = model(token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            yield token.item()


def hf_generation(model: Any, prompt: Sequence[int], new_tokens: int) -> GenerationTiming:
    """Greedy generation with a transformers model (KV cache on), timed like every backend."""
    return timed_generation(hf_steps(model, prompt, new_tokens))


# --- memory ---------------------------------------------------------------------------------------


class PeakMemory:
    """Resident memory a block of code added at its peak (Linux VmHWM, reset first; else RSS after)."""

    def __enter__(self) -> PeakMemory:
        self._can_reset = _reset_peak_rss()
        self._before = _rss_bytes()
        self.bytes = 0
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _peak_rss_bytes() if self._can_reset else None
        self.bytes = max(0, (peak if peak is not None else _rss_bytes()) - self._before)


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := current RSS
        return _peak_rss_bytes() is not None
    except OSError:
        return False


def _peak_rss_bytes() -> int | None:
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


# --- backends -------------------------------------------------------------------------------------


class Backend(Protocol):
    """One way of running the model. Libraries are imported when it is made; ``load`` is what is timed."""

    name: str
    kind: str  # "torch" or the artifact's backend name ("ort", "ort-int8", ...)
    artifact: Path | None
    model_bytes: int

    def load(self) -> None: ...


class ClassifierBackend(Backend, Protocol):
    def __call__(self) -> None:
        """One forward pass on the benchmark's clip."""


class LmBackend(Backend, Protocol):
    def generate(self, prompt: Sequence[int], new_tokens: int) -> GenerationTiming:
        """One greedy generation, timed."""


@dataclass(frozen=True)
class ArtifactInfo(Artifact):
    """A checked artifact (the runtime's :class:`~lexiedge.runtime.artifact.Artifact`) plus what the bench needs."""

    @property
    def backend(self) -> str:
        """The runner's name for this artifact ("ort-int8"): its engine's registered runner says it."""
        return runner_for(self.manifest, str(self.directory)).label(self.target)

    @property
    def source(self) -> dict[str, Any]:
        return self.manifest.get("source") or {}


class ArtifactClassifier:
    """A classifier artifact through the embeddable runtime, on the CPU, with its engine's runner (or, with
    ``device="openvino"``, an ``.onnx`` graph on OpenVINO)."""

    def __init__(
        self,
        name: str,
        info: ArtifactInfo,
        feeds: dict[str, np.ndarray],
        threads: int,
        *,
        device: str = "cpu",
        kind: str | None = None,
    ) -> None:
        self.name, self.kind, self.artifact = name, kind or info.backend, info.directory
        self.model_bytes = int(info.manifest.get("size_bytes") or 0)
        self._feeds, self._threads, self._model, self._device = feeds, threads, None, device
        _import_runner(info)  # library import is not load time
        if device == OPENVINO:
            import openvino  # noqa: F401  (as above)

    def load(self) -> None:
        from lexiedge.runtime import load

        self._model = load(self.artifact, self._device, threads=self._threads)

    def __call__(self) -> None:
        self._model.run(self._feeds)

    def logits(self) -> np.ndarray:
        """The logits of the benchmark's clip (`bench --all-formats` compares them with eager PyTorch's)."""
        return np.asarray(self._model.run(self._feeds)[0], dtype=np.float32)


class TorchClassifier:
    """The classifier artifacts' source model in PyTorch eager mode, rebuilt through its model plugin."""

    kind = TORCH

    def __init__(self, name: str, info: ArtifactInfo, feeds: dict[str, np.ndarray], threads: int) -> None:
        self.name, self.artifact = name, None
        self._info, self._threads = info, threads
        self._input_names = [
            value["name"] for value in (info.manifest.get("signature") or {}).get("inputs", [])
        ]
        self._inputs: list[Any] = []
        self._module: Any = None
        self._run_dir, self._weights = classifier_source(info)
        self.model_bytes = self._weights.stat().st_size
        self._feeds = feeds
        import torch  # noqa: F401  (library import is not load time)

    def load(self) -> None:
        import torch
        from safetensors.torch import load_file

        from lexiedge.plugin import get_host
        from lexiedge.rundir import load_run_profile

        torch.set_num_threads(self._threads)
        profile, key = load_run_profile(self._run_dir)
        entry = profile.model(key)
        built = (
            get_host()
            .models.get(entry.model.plugin)
            .build(entry.model.settings, profile.device, pretrained=False)
        )
        module = built.module.cpu().float()
        module.load_state_dict(load_file(self._weights), strict=True)
        self._module = module.eval()
        self._inputs = [torch.from_numpy(self._feeds[name]) for name in self._input_names or self._feeds]

    def __call__(self) -> None:
        import torch

        with torch.inference_mode():
            self._module(*self._inputs)

    def logits(self) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self._module(*self._inputs)
        return (out[0] if isinstance(out, (tuple, list)) else out).float().numpy()


class ArtifactLm:
    """An LLM artifact through the embeddable runtime, on the CPU, with its engine's runner (its
    ``greedy_steps``)."""

    def __init__(self, name: str, info: ArtifactInfo, threads: int) -> None:
        self.name, self.kind, self.artifact = name, info.backend, info.directory
        self.model_bytes = int(info.manifest.get("size_bytes") or 0)
        self._threads, self._model = threads, None
        _import_runner(info)  # library import is not load time

    def load(self) -> None:
        from lexiedge.runtime import load

        self._model = load(self.artifact, "cpu", threads=self._threads)

    def generate(self, prompt: Sequence[int], new_tokens: int) -> GenerationTiming:
        return timed_generation(self._model.greedy_steps(prompt, new_tokens))


OrtClassifier, GenAiLm = ArtifactClassifier, ArtifactLm  # the names bench/ scripts import


def _import_runner(info: ArtifactInfo) -> None:
    """Import the runner's module and its engine's library before anything is timed."""
    import importlib

    entry = runner_for(info.manifest, str(info.directory))
    importlib.import_module(entry.opener.partition(":")[0])
    for library in entry.libraries:
        importlib.import_module(library)


class TorchLm:
    """The LLM artifacts' source (the merged model directory) with transformers, eager attention, fp32."""

    kind = TORCH

    def __init__(self, name: str, info: ArtifactInfo, threads: int) -> None:
        self.name, self.artifact = name, None
        merged = info.source.get("merged_model")
        if not merged or not (Path(merged) / "config.json").is_file():
            raise BenchError(
                f"backend torch needs the source model of {info.directory} ({merged or 'not recorded in its manifest'}), "
                "which is missing; leave torch out of --backends"
            )
        self._dir, self._threads, self._model = Path(merged), threads, None
        self.model_bytes = sum(p.stat().st_size for p in self._dir.glob("*.safetensors"))
        import transformers  # noqa: F401  (library import is not load time)

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(self._threads)
        self._model = AutoModelForCausalLM.from_pretrained(
            self._dir, dtype=torch.float32, attn_implementation="eager"
        ).eval()

    def generate(self, prompt: Sequence[int], new_tokens: int) -> GenerationTiming:
        return hf_generation(self._model, prompt, new_tokens)


def classifier_source(info: ArtifactInfo) -> tuple[Path, Path]:
    """The run directory and weights file an artifact was exported from, or one line saying what is gone."""
    source = info.source
    run = Path(source["run"]) if source.get("run") else None
    weights = Path(source["checkpoint_file"]) if source.get("checkpoint_file") else None
    if weights is None and run is not None and source.get("checkpoint"):
        weights = run / source["checkpoint"] / WEIGHTS
    if run is None or weights is None or not is_run_dir(run) or not weights.is_file():
        raise BenchError(
            f"backend torch needs the source run of {info.directory} ({run or 'not recorded in its manifest'}: "
            "profile.yaml and the checkpoint), which is missing; leave torch out of --backends"
        )
    return run, weights


# --- inputs ---------------------------------------------------------------------------------------


def classifier_feeds(manifest: dict[str, Any], batch: int, seed: int) -> dict[str, np.ndarray]:
    """A seeded random clip (both modalities present) shaped like the training clips (the task's example)."""
    spec = ClassifierSpec.from_manifest(manifest, "the first artifact")
    rng = np.random.default_rng(seed)
    return example_feeds(rng, batch, spec.clip_samples, spec.frame_count, spec.image_size, spec.channels)


def prompt_ids(artifact: Path, count: int) -> list[int]:
    """``count`` token ids of a fixed English text through the artifact's own tokenizer."""
    from lexiedge.runtime.artifact import open_artifact
    from lexiedge.runtime.chat import ChatTokenizer

    tokenizer = ChatTokenizer(open_artifact(artifact))
    ids: list[int] = []
    while len(ids) < count:
        ids += tokenizer.encode(PROMPT_TEXT)
    return ids[:count]
