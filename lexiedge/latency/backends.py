"""The backends `lexiedge bench` times, and how: one forward of a classifier, one greedy generation.

A classifier backend is called with the benchmark's fixed clip (``backend()``); an LLM backend
generates (``backend.generate(prompt, new_tokens)`` -> :class:`GenerationTiming`). Libraries are
imported when a backend is made, so ``load()`` times the model's loading only. ORT backends load
through the embeddable runtime (:func:`lexiedge.runtime.load`); "torch" rebuilds the source model
(classifier: through its model plugin from the run's profile and checkpoint; LLM: the merged model
directory with transformers, eager attention, fp32). :mod:`bench` (bench/bench_llm_decode.py) times
with the same generation functions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lexiedge.errors import LexiedgeError
from lexiedge.rundir import WEIGHTS, is_run_dir
from lexiedge.runtime.artifact import Artifact

TORCH = "torch"
TARGET_BACKENDS = {
    "onnx": "ort",
    "onnx-int8": "ort-int8",
    "onnx-int4": "ort-int4",
    "ort-mobile": "ort-mobile",
}
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


def genai_generation(model: Any, prompt: Sequence[int], new_tokens: int) -> GenerationTiming:
    """Greedy generation through onnxruntime-genai (KV cache in ORT), EOS suppressed so every step runs."""
    import onnxruntime_genai as og

    total = len(prompt) + new_tokens
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=total, min_length=total, do_sample=False)
    generator = og.Generator(model, params)
    start = time.perf_counter()
    generator.append_tokens(np.asarray([prompt], dtype=np.int32))
    prefill = time.perf_counter() - start
    generator.generate_next_token()
    generator.get_next_tokens()
    ttft = time.perf_counter() - start
    steps = []
    for _ in range(new_tokens - 1):
        step = time.perf_counter()
        generator.generate_next_token()
        generator.get_next_tokens()
        steps.append(time.perf_counter() - step)
    return GenerationTiming(prefill, ttft, steps)


def hf_generation(model: Any, prompt: Sequence[int], new_tokens: int) -> GenerationTiming:
    """Greedy generation with a transformers model (KV cache on), one forward per new token."""
    import torch

    with torch.inference_mode():
        start = time.perf_counter()
        out = model(torch.tensor([list(prompt)]), use_cache=True)
        prefill = time.perf_counter() - start
        token = out.logits[:, -1:].argmax(-1)
        token.item()  # the first token exists on the host
        ttft = time.perf_counter() - start
        cache, steps = out.past_key_values, []
        for _ in range(new_tokens - 1):
            step = time.perf_counter()
            out = model(token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            token.item()
            steps.append(time.perf_counter() - step)
    return GenerationTiming(prefill, ttft, steps)


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
        return TARGET_BACKENDS.get(self.target, f"ort-{self.target}")

    @property
    def source(self) -> dict[str, Any]:
        return self.manifest.get("source") or {}


class OrtClassifier:
    """A classifier artifact through the embeddable runtime (ONNX Runtime, CPU)."""

    def __init__(self, name: str, info: ArtifactInfo, feeds: dict[str, np.ndarray], threads: int) -> None:
        self.name, self.kind, self.artifact = name, info.backend, info.directory
        self.model_bytes = int(info.manifest.get("size_bytes") or 0)
        self._feeds, self._threads, self._model = feeds, threads, None
        import onnxruntime  # noqa: F401  (library import is not load time)

    def load(self) -> None:
        from lexiedge.runtime import load

        self._model = load(self.artifact, "cpu", threads=self._threads)

    def __call__(self) -> None:
        self._model.run(self._feeds)


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

        from lexiedge.rundir import load_run_profile
        from lexiedge.plugin import get_host

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


class GenAiLm:
    """An LLM artifact through the embeddable runtime (ONNX Runtime GenAI, CPU)."""

    def __init__(self, name: str, info: ArtifactInfo, threads: int) -> None:
        self.name, self.kind, self.artifact = name, info.backend, info.directory
        self.model_bytes = int(info.manifest.get("size_bytes") or 0)
        self._threads, self._model = threads, None
        import onnxruntime_genai  # noqa: F401  (library import is not load time)

    def load(self) -> None:
        from lexiedge.runtime import load

        self._model = load(self.artifact, "cpu", threads=self._threads).model

    def generate(self, prompt: Sequence[int], new_tokens: int) -> GenerationTiming:
        return genai_generation(self._model, prompt, new_tokens)


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
    """A seeded random clip (both modalities present) shaped like the training clips."""
    from lexiedge.runtime.inputs import ClassifierSpec
    from lexiedge_runtime.io_names import AUDIO_MASK, FRAMES, VIDEO_MASK, WAVEFORM

    spec = ClassifierSpec.from_manifest(manifest, "the first artifact")
    rng = np.random.default_rng(seed)
    size = spec.image_size
    return {
        WAVEFORM: (rng.uniform(-1.0, 1.0, (batch, spec.clip_samples)) * 0.1).astype(np.float32),
        FRAMES: rng.uniform(0.0, 1.0, (batch, spec.frame_count, spec.channels, size, size)).astype(
            np.float32
        ),
        AUDIO_MASK: np.ones(batch, np.float32),
        VIDEO_MASK: np.ones(batch, np.float32),
    }


def prompt_ids(artifact: Path, count: int) -> list[int]:
    """``count`` token ids of a fixed English text through the artifact's own tokenizer."""
    from lexiedge.runtime.artifact import open_artifact
    from lexiedge.runtime.chat import ChatTokenizer

    tokenizer = ChatTokenizer(open_artifact(artifact))
    ids: list[int] = []
    while len(ids) < count:
        ids += tokenizer.encode(PROMPT_TEXT)
    return ids[:count]
