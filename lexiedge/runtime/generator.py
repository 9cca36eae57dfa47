"""The causal LM: ONNX Runtime GenAI's ``Generator`` over an artifact with ``genai_config.json``.

GenAI keeps the KV cache in ONNX Runtime (one buffer shared between past and present, no copy per
token) and does the search (greedy, or top-p sampling with a temperature). Tokenizing and the chat
template are :mod:`lexiedge.runtime.chat`'s, so prompts are tokenized exactly as in training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lexiedge.runtime.artifact import Artifact
from lexiedge.runtime.chat import ChatTokenizer, StopScanner, cut_at_stop
from lexiedge.runtime.errors import ArtifactError, DeviceNotAvailableError, InferenceError, InputValueError

GENAI_CONFIG = "genai_config.json"
_PROVIDER_DEVICES = {
    "CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "tensorrt", "CPUExecutionProvider": "cpu",
}
FinishReason = Literal["eos", "stop", "length"]
Prompt = str | Sequence[dict[str, str]]


@dataclass
class Generation:
    """A finished generation: the text (stop string excluded) and how it ended."""

    text: str
    token_ids: list[int] = field(default_factory=list)  # generated ids, the EOS token excluded
    prompt_tokens: int = 0
    finish_reason: FinishReason = "length"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _Options:
    max_new_tokens: int
    temperature: float
    top_p: float
    stops: tuple[str, ...]
    seed: int | None


class TextGenerator:
    """Runs a ``causal-lm`` artifact. Build it with :func:`lexiedge.runtime.load`.

    Attributes: ``model`` (the ``onnxruntime_genai.Model``), ``tokenizer`` (a
    :class:`~lexiedge.runtime.chat.ChatTokenizer`), ``device`` ("cpu" or "cuda"), ``eos_token_ids``,
    ``context_length``, ``manifest``, ``artifact_dir``. One generation at a time per instance.
    """

    def __init__(self, artifact: Artifact, device: str, *, threads: int | None = None) -> None:
        import onnxruntime_genai as og

        self.artifact_dir = artifact.directory
        self.manifest = artifact.manifest
        config_path = artifact.path(artifact.runtime.get("config") or GENAI_CONFIG)
        genai_config = json.loads(config_path.read_text(encoding="utf-8"))
        decoder_file = genai_config.get("model", {}).get("decoder", {}).get("filename", "model.onnx")
        artifact.path(decoder_file)  # the graph GenAI will open must be one the manifest vouches for
        self.device = device
        self.context_length = int(genai_config["model"].get("context_length") or 0) or None
        self.eos_token_ids = _eos_ids(genai_config, artifact.manifest)
        config = og.Config(str(config_path.parent))
        config.clear_providers()  # the CPU unless a provider is appended
        if device == "cuda":
            config.append_provider("cuda")
        if threads is not None:
            if threads < 1:
                raise InputValueError(f"threads must be a positive number of threads, got {threads}")
            options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        try:
            self.model = og.Model(config)
        except Exception as exc:  # GenAI's errors are RuntimeError with ORT's message
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ArtifactError(
                f"{self.artifact_dir}: ONNX Runtime GenAI cannot load the model on {device}: {first}"
            ) from None
        self.tokenizer = ChatTokenizer(artifact)

    def generate(
        self,
        messages_or_prompt: Prompt,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: str | Sequence[str] | None = None,
        stream: bool = False,
        *,
        seed: int | None = None,
    ) -> Generation | Iterator[str]:
        """Continue a prompt: a list of ``{"role", "content"}`` messages (through the chat template,
        the assistant's turn opened) or a plain string (tokenized as is).

        ``temperature`` 0 is greedy; above 0 samples with ``top_p`` (nucleus) and ``seed``. Generation
        ends at an EOS token, at ``max_new_tokens``, or at the first ``stop`` string (cut from the text).
        ``stream=True`` returns an iterator of text pieces as tokens arrive (their concatenation is the
        non-streamed text); otherwise a :class:`Generation`. Arguments are checked before anything
        runs: a bad one raises :class:`~lexiedge.runtime.errors.RuntimeInputError`.
        """
        options = _check_options(max_new_tokens, temperature, top_p, stop, seed)
        prompt = self.tokenizer.prompt_ids(messages_or_prompt)
        if self.context_length is not None and len(prompt) >= self.context_length:
            raise InputValueError(
                f"the prompt is {len(prompt)} tokens; this model's context holds {self.context_length} "
                "(prompt and new tokens together): shorten it"
            )
        if stream:
            return self._stream(prompt, options)
        return self._complete(prompt, options)

    # --- the two ways out ---------------------------------------------------------------------------

    def _complete(self, prompt: list[int], options: _Options) -> Generation:
        tokens, reason = [], "length"
        scanner, decoder = StopScanner(options.stops), self.tokenizer.stream()
        for token in self._tokens(prompt, options):
            if token in self.eos_token_ids:
                reason = "eos"
                break
            tokens.append(token)
            if options.stops and scanner.feed(self._step(decoder, token))[1]:
                reason = "stop"
                break
        text, _ = cut_at_stop(self.tokenizer.decode(tokens), options.stops)
        return Generation(text, tokens, len(prompt), reason)

    def _stream(self, prompt: list[int], options: _Options) -> Iterator[str]:
        scanner, decoder = StopScanner(options.stops), self.tokenizer.stream()
        for token in self._tokens(prompt, options):
            if token in self.eos_token_ids:
                break
            piece, stopped = scanner.feed(self._step(decoder, token))
            if piece:
                yield piece
            if stopped:
                return
        rest = scanner.flush()
        if rest:
            yield rest

    # --- the loop -------------------------------------------------------------------------------

    def _tokens(self, prompt: list[int], options: _Options) -> Iterator[int]:
        """New token ids, one per step, from GenAI's generator (the KV cache stays in ORT)."""
        import onnxruntime_genai as og

        max_length = len(prompt) + options.max_new_tokens
        if self.context_length is not None:
            max_length = min(max_length, self.context_length)
        search: dict[str, Any] = {"max_length": max_length, "do_sample": options.temperature > 0}
        if options.temperature > 0:
            # top_k = 0 would leave GenAI's default (50) in force; the whole vocabulary makes top_p the only cut
            search.update(temperature=options.temperature, top_p=options.top_p, top_k=self._vocab_size())
            if options.seed is not None:
                search["random_seed"] = options.seed
        try:
            params = og.GeneratorParams(self.model)
            params.set_search_options(**search)
            generator = og.Generator(self.model, params)
            generator.append_tokens(np.asarray([prompt], dtype=np.int32))
            while not generator.is_done():
                generator.generate_next_token()
                yield int(generator.get_next_tokens()[0])
        except RuntimeError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InferenceError(f"ONNX Runtime GenAI failed on a {len(prompt)}-token prompt: {first}") from None

    def _step(self, decoder: Any, token: int) -> str:
        return decoder.step(self.tokenizer.tokenizer, token) or ""

    def _vocab_size(self) -> int:
        declared = (self.manifest.get("architecture") or {}).get("vocab_size")
        return int(declared or self.tokenizer.tokenizer.get_vocab_size())

    def __repr__(self) -> str:
        return f"TextGenerator({self.artifact_dir}, device={self.device})"


def genai_devices() -> list[str]:
    """Devices this onnxruntime-genai build can run on, fastest first."""
    import onnxruntime_genai as og

    return ["cuda", "cpu"] if og.is_cuda_available() else ["cpu"]


def choose_genai_device(device: str = "auto", providers: Sequence[Any] | None = None) -> str:
    """``auto``: CUDA when this GenAI build has it, else the CPU; a named device must be available."""
    if providers:  # ORT provider names, as the classifier takes them: the first one decides
        first = providers[0] if isinstance(providers[0], str) else providers[0][0]
        device = _PROVIDER_DEVICES.get(first, first)
    available = genai_devices()
    device = device.lower()
    if device == "auto":
        return available[0]
    if device not in available:
        known = "auto, tensorrt, cuda, cpu"
        why = ("TensorRT is not used for GenAI text generation" if device == "tensorrt"
               else f"unknown device (expected one of {known})" if device not in ("cuda", "cpu")
               else "this onnxruntime-genai build has no CUDA (install onnxruntime-genai-cuda and use a GPU)")
        raise DeviceNotAvailableError(
            f"device {device!r} cannot run a text-generation artifact: {why}; available: {', '.join(available)}"
        )
    return device


def _check_options(max_new_tokens: Any, temperature: Any, top_p: Any, stop: Any, seed: Any) -> _Options:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise InputValueError(f"max_new_tokens must be a whole number >= 1, got {max_new_tokens!r}")
    if not _is_number(temperature) or temperature < 0:
        raise InputValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if not _is_number(top_p) or not 0 < top_p <= 1:
        raise InputValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    else:
        raise InputValueError(f"stop must be a string or a list of strings, got {stop!r}")
    if any(not s for s in stops):
        raise InputValueError("stop strings must not be empty")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputValueError(f"seed must be a whole number >= 0, got {seed!r}")
    return _Options(int(max_new_tokens), float(temperature), float(top_p), stops, None if seed is None else int(seed))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def _eos_ids(genai_config: dict[str, Any], manifest: dict[str, Any]) -> frozenset[int]:
    """EOS ids from genai_config.json and the manifest's tokenizer section (generation_config's)."""
    ids: set[int] = set()
    for value in (genai_config.get("model", {}).get("eos_token_id"),
                  (manifest.get("tokenizer") or {}).get("eos_token_ids")):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(int(v) for v in value if isinstance(v, int))
    return frozenset(ids)
