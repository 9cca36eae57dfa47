"""The causal LM: ONNX Runtime GenAI's ``Generator`` over an artifact with ``genai_config.json``.

GenAI keeps the KV cache in ONNX Runtime (one buffer shared between past and present, no copy per
token) and does the search (greedy, or top-p sampling with a temperature). Tokenizing and the chat
template are :mod:`lexiedge_runtime.chat`'s, so prompts are tokenized exactly as in training.

Between calls the generator keeps the last generation's KV cache (:mod:`lexiedge_runtime.kv_cache`)
and prefills only what a new prompt does not share with it, so a chat turn pays for the new message,
not the whole history; the prompt's fixed beginning (the app's system prompt) can be prefilled at load.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.chat import ChatTokenizer, StopScanner, check_messages, cut_at_stop
from lexiedge_runtime.errors import (
    ArtifactError,
    DeviceNotAvailableError,
    InferenceError,
    InputValueError,
    first_line,
)
from lexiedge_runtime.extras import require
from lexiedge_runtime.genai_files import genai_folder, read_genai_config
from lexiedge_runtime.kv_cache import DEFAULT_CACHE_TOKENS, CacheSlot, KeptGenerator, SearchSettings, prefill
from lexiedge_runtime.tasks.spec import LoadRequest

_PROVIDER_DEVICES = {
    "CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "tensorrt", "CPUExecutionProvider": "cpu",
}
FinishReason = Literal["eos", "stop", "length"]
Prompt = str | Sequence[dict[str, str]]


@dataclass
class Generation:
    """A finished generation: the text (stop string excluded) and how it ended.

    ``reused_tokens`` of the ``prompt_tokens`` came from the kept KV cache; the rest were prefilled.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)  # generated ids, the EOS token excluded
    prompt_tokens: int = 0
    finish_reason: FinishReason = "length"
    reused_tokens: int = 0

    @property
    def prefilled_tokens(self) -> int:
        """Prompt tokens this call ran through the model (the rest were already in the cache)."""
        return self.prompt_tokens - self.reused_tokens

    def __str__(self) -> str:
        return self.text


class TextStream(Iterator[str]):
    """The text pieces of a streamed generation (``generate(..., stream=True)``) as tokens arrive.

    Iterate it like any iterator of strings; while and after it runs it tells how far it got:
    ``prompt_tokens``, ``completion_tokens`` (generated ids so far, EOS excluded, as in
    :class:`Generation`), ``reused_tokens``, and once it ended ``finish_reason`` ("eos", "stop" or
    "length"; None while running or when closed early). ``close()`` ends it early and frees the
    kept cache's lease at once (a server calls it when the client goes away).
    """

    def __init__(self, prompt_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self.reused_tokens = 0
        self.finish_reason: FinishReason | None = None
        self._pieces: Generator[str, None, None] = iter(())  # type: ignore[assignment]

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()


@dataclass(frozen=True)
class _Options:
    max_new_tokens: int
    temperature: float
    top_p: float
    stops: tuple[str, ...]
    seed: int | None

    @property
    def search(self) -> SearchSettings:
        if self.temperature == 0:
            return SearchSettings()
        return SearchSettings(do_sample=True, temperature=self.temperature, top_p=self.top_p)


@dataclass
class _Prefill:
    """What one call's prefill did, filled in once it ran (a stream prefills at its first item)."""

    reused_tokens: int = 0


class TextGenerator:
    """Runs a ``causal-lm`` artifact. Build it with :func:`lexiedge_runtime.load`.

    Attributes: ``model`` (the ``onnxruntime_genai.Model``), ``tokenizer`` (a
    :class:`~lexiedge_runtime.chat.ChatTokenizer`), ``device`` ("cpu" or "cuda"), ``eos_token_ids``,
    ``context_length``, ``cache_tokens``, ``prefix_reuse``, ``manifest``, ``artifact_dir``, and the
    counters ``prefilled_tokens`` / ``reused_tokens`` (prompt tokens run through the model / taken
    from the kept cache since load, warm-ups included).

    Prefix reuse (``prefix_reuse=True``, the default): the KV cache of the last generation is kept
    (up to ``cache_tokens`` tokens; default the context length, at most 4096) and the next call
    rewinds it to the longest token prefix it shares with the new prompt and prefills only the rest.
    Greedy output is the one a fresh generator gives, token for token (the kept keys and values are
    what a fresh prefill computes, up to float rounding). A call whose prompt plus ``max_new_tokens``
    does not fit ``cache_tokens``, or that samples with a ``seed`` (a reproducible draw needs a fresh
    random state), runs on a generator of its own and leaves the kept cache as it was. Sampling
    without a seed reuses a cache kept by a call with the same temperature and top_p.

    Memory: GenAI allocates the kept cache whole at its first use (``cache_tokens`` positions of every
    layer's keys and values; ~100 MB for the 0.5B model at 4096) and ``clear_cache()`` frees it. A
    prompt that does not fit the model's context is refused with one line (drop the oldest turns).

    Threads: one instance may serve several threads (a server's requests). The kept cache is leased
    to one call at a time; a call that finds it leased (another thread generating, or a stream of
    this one not yet exhausted or closed) runs on a generator of its own, so two calls never share a
    GenAI generator and never wait for each other. The counters are updated under a lock.
    """

    def __init__(
        self,
        artifact: Artifact,
        device: str,
        *,
        threads: int | None = None,
        prefix_reuse: bool = True,
        cache_tokens: int | None = None,
        warm_prompt: Prompt | None = None,
    ) -> None:
        import onnxruntime_genai as og

        self.artifact_dir = artifact.directory
        self.manifest = artifact.manifest
        genai_config = read_genai_config(artifact)  # every file it names is listed, or it is refused
        self.device = device
        self.context_length = genai_config.context_length
        self.eos_token_ids = _eos_ids(genai_config.data, artifact.manifest)
        self._model_vocab = genai_config.vocab_size
        self.prefix_reuse = bool(prefix_reuse)
        self.cache_tokens = _check_cache_tokens(cache_tokens, self.context_length)
        if threads is not None and threads < 1:
            raise InputValueError(f"threads must be a positive number of threads, got {threads}")
        self.tokenizer = ChatTokenizer(artifact)  # its files and template are checked before the model loads
        with genai_folder(artifact, genai_config) as folder:  # GenAI sees the listed files and nothing else
            try:
                config = og.Config(str(folder))
                config.clear_providers()  # the CPU unless a provider is appended
                if device == "cuda":
                    config.append_provider("cuda")
                if threads is not None:
                    options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
                    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
                self.model = og.Model(config)
            except Exception as exc:  # GenAI's errors are RuntimeError with ORT's message
                first = first_line(exc)
                raise ArtifactError(
                    f"{self.artifact_dir}: ONNX Runtime GenAI cannot load the model on {device}: {first}"
                ) from None
        self._slot = CacheSlot(self.cache_tokens)
        self._counters = threading.Lock()
        self.prefilled_tokens = 0
        self.reused_tokens = 0
        if warm_prompt is not None:
            self.warm(warm_prompt)

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
    ) -> Generation | TextStream:
        """Continue a prompt: a list of ``{"role", "content"}`` messages (through the chat template,
        the assistant's turn opened) or a plain string (tokenized as is).

        ``temperature`` 0 is greedy; above 0 samples with ``top_p`` (nucleus) and ``seed``. Generation
        ends at an EOS token, at ``max_new_tokens``, or at the first ``stop`` string (cut from the text).
        ``stream=True`` returns a :class:`TextStream`, an iterator of text pieces as tokens arrive (their
        concatenation is the non-streamed text) that also counts tokens and says how it ended;
        otherwise a :class:`Generation`. Arguments are checked before anything
        runs: a bad one raises :class:`~lexiedge_runtime.errors.RuntimeInputError`.
        """
        options = _check_options(max_new_tokens, temperature, top_p, stop, seed)
        prompt = self.tokenizer.prompt_ids(messages_or_prompt)
        self._check_fits(prompt)
        if stream:
            return self._stream(prompt, options)
        return self._complete(prompt, options)

    def generate_ids(
        self,
        prompt_ids: Sequence[int],
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        *,
        seed: int | None = None,
    ) -> Iterator[int]:
        """Continue token ids (no template, no decoding): an iterator of new ids as they are generated,
        ending before an EOS id or after ``max_new_tokens``. Same cache, options and checks as
        :meth:`generate`; for callers that tokenize themselves (and benchmarks timing each token)."""
        options = _check_options(max_new_tokens, temperature, top_p, None, seed)
        prompt = self._check_ids(prompt_ids)
        self._check_fits(prompt)
        return self._until_eos(prompt, options)

    def warm(self, messages_or_prompt: Prompt) -> int:
        """Prefill the beginning every prompt will share (the app's system prompt) into the kept cache,
        so the next call prefills only what follows it. Messages are rendered without opening the
        assistant's turn. Returns the tokens prefilled: 0 when reuse is off, the cache is leased by a
        running call, or it already holds them."""
        if isinstance(messages_or_prompt, str):
            prompt = self.tokenizer.prompt_ids(messages_or_prompt)
        else:
            messages = check_messages(messages_or_prompt)
            prompt = self.tokenizer.encode(self.tokenizer.render(messages, add_generation_prompt=False))
        self._check_fits(prompt)
        if not self.prefix_reuse or len(prompt) >= self.cache_tokens or not self._slot.try_lease():
            return 0
        try:
            kept = self._kept_generator(SearchSettings(), None)
            reused = self._prefill(kept, prompt, need_logits=False)
        finally:
            self._slot.release()
        return len(prompt) - reused

    def greedy_steps(self, prompt_ids: Sequence[int], new_tokens: int) -> Iterator[int | None]:
        """A benchmark's timed path: greedy decoding on a fresh generator (no kept cache), EOS suppressed so
        every step runs. The generator exists when this returns; the iterator yields None once the prompt
        is prefilled, then each of the ``new_tokens`` token ids (`lexiedge bench` times each ``next``)."""
        return genai_greedy_steps(self.model, self._check_ids(prompt_ids), new_tokens)

    def clear_cache(self) -> None:
        """Free the kept KV cache (now, or when the call using it ends); the next call prefills all."""
        self._slot.clear()

    # --- the two ways out ---------------------------------------------------------------------------

    def _complete(self, prompt: list[int], options: _Options) -> Generation:
        tokens, reason, prefill = [], "length", _Prefill()
        scanner, decoder = StopScanner(options.stops), self.tokenizer.stream()
        with closing(self._tokens(prompt, options, prefill)) as generated:  # closing: the lease ends here
            for token in generated:
                if token in self.eos_token_ids:
                    reason = "eos"
                    break
                tokens.append(token)
                if options.stops and scanner.feed(self._step(decoder, token))[1]:
                    reason = "stop"
                    break
        text, _ = cut_at_stop(self.tokenizer.decode(tokens), options.stops)
        return Generation(text, tokens, len(prompt), reason, prefill.reused_tokens)

    def _stream(self, prompt: list[int], options: _Options) -> TextStream:
        stream = TextStream(len(prompt))
        stream._pieces = self._stream_pieces(prompt, options, stream)
        return stream

    def _stream_pieces(self, prompt: list[int], options: _Options, stream: TextStream) -> Generator[str, None, None]:
        scanner, decoder, prefill = StopScanner(options.stops), self.tokenizer.stream(), _Prefill()
        with closing(self._tokens(prompt, options, prefill)) as generated:  # a closed stream ends its lease
            for token in generated:
                stream.reused_tokens = prefill.reused_tokens
                if token in self.eos_token_ids:
                    stream.finish_reason = "eos"
                    break
                stream.completion_tokens += 1
                piece, stopped = scanner.feed(self._step(decoder, token))
                if piece:
                    yield piece
                if stopped:
                    stream.finish_reason = "stop"
                    return
            else:
                stream.finish_reason = "length"
        rest = scanner.flush()
        if rest:
            yield rest

    def _until_eos(self, prompt: list[int], options: _Options) -> Generator[int, None, None]:
        with closing(self._tokens(prompt, options, _Prefill())) as generated:
            for token in generated:
                if token in self.eos_token_ids:
                    return
                yield token

    # --- the loop -------------------------------------------------------------------------------

    def _tokens(self, prompt: list[int], options: _Options, prefill: _Prefill) -> Generator[int, None, None]:
        """New token ids, one per step, from a GenAI generator: the kept one when this call may lease
        it, else one of its own. The lease ends when the iterator does (exhausted, closed, collected)."""
        if self._may_use_kept_cache(prompt, options) and self._slot.try_lease():
            try:
                yield from self._tokens_on_kept(prompt, options, prefill)
            finally:
                self._slot.release()
        else:
            yield from self._tokens_on_own(prompt, options)

    def _may_use_kept_cache(self, prompt: list[int], options: _Options) -> bool:
        seeded_sampling = options.temperature > 0 and options.seed is not None
        fits = len(prompt) + options.max_new_tokens <= self.cache_tokens
        return self.prefix_reuse and fits and not seeded_sampling

    def _tokens_on_kept(self, prompt: list[int], options: _Options, prefill: _Prefill) -> Iterator[int]:
        kept = self._kept_generator(options.search, None)
        prefill.reused_tokens = self._prefill(kept, prompt, need_logits=True)
        previous: int | None = None
        with self._genai_errors(prompt, leased=True):
            for _ in range(options.max_new_tokens):
                if kept.generator.is_done():
                    break
                kept.generator.generate_next_token()
                if previous is not None:
                    kept.ids.append(previous)  # this step ran the model on it: its keys and values are cached
                previous = int(kept.generator.get_next_tokens()[0])
                yield previous

    def _tokens_on_own(self, prompt: list[int], options: _Options) -> Iterator[int]:
        """A generator used by this call alone, sized for it (no reuse, nothing kept): the behaviour
        with ``prefix_reuse=False``, and the way round a leased or too small cache."""
        max_length = len(prompt) + options.max_new_tokens
        if self.context_length is not None:
            max_length = min(max_length, self.context_length)
        with self._genai_errors(prompt, leased=False):
            generator = self._new_genai_generator(options.search, options.seed, max_length)
            generator.append_tokens(np.asarray([prompt], dtype=np.int32))
            self._count(prefilled=len(prompt), reused=0)
            while not generator.is_done():
                generator.generate_next_token()
                yield int(generator.get_next_tokens()[0])

    def _kept_generator(self, search: SearchSettings, seed: int | None) -> KeptGenerator:
        """The slot's generator (the caller holds the lease), replaced when its settings differ."""
        kept = self._slot.kept
        if kept is None or kept.settings != search:
            self._slot.kept = None  # free the old buffer before allocating the new one
            with self._genai_errors([], leased=True):
                generator = self._new_genai_generator(search, seed, self._slot.capacity)
            kept = self._slot.kept = KeptGenerator(generator, search)
        return kept

    def _prefill(self, kept: KeptGenerator, prompt: list[int], *, need_logits: bool) -> int:
        with self._genai_errors(prompt, leased=True):
            reused = prefill(kept, prompt, need_logits=need_logits)
        self._count(prefilled=len(prompt) - reused, reused=reused)
        return reused

    def _new_genai_generator(self, search: SearchSettings, seed: int | None, max_length: int) -> Any:
        import onnxruntime_genai as og

        options: dict[str, Any] = {"max_length": max_length, "do_sample": search.do_sample}
        if search.do_sample:
            # top_k = 0 would leave GenAI's default (50) in force; the whole vocabulary: top_p is the only cut
            options.update(temperature=search.temperature, top_p=search.top_p, top_k=self._vocab_size())
            if seed is not None:
                options["random_seed"] = seed
        params = og.GeneratorParams(self.model)
        params.set_search_options(**options)
        return og.Generator(self.model, params)

    @contextmanager
    def _genai_errors(self, prompt: Sequence[int], *, leased: bool) -> Iterator[None]:
        """GenAI's RuntimeError as one line. A call holding the lease drops the kept generator: after a
        failure its state is unknown."""
        try:
            yield
        except RuntimeError as exc:
            if leased:
                self._slot.kept = None
            first = first_line(exc)
            raise InferenceError(f"ONNX Runtime GenAI failed on a {len(prompt)}-token prompt: {first}") from None

    def _count(self, *, prefilled: int, reused: int) -> None:
        with self._counters:
            self.prefilled_tokens += prefilled
            self.reused_tokens += reused

    # --- checks -----------------------------------------------------------------------------------

    def _check_fits(self, prompt: list[int]) -> None:
        if self.context_length is not None and len(prompt) >= self.context_length:
            raise InputValueError(
                f"the prompt is {len(prompt)} tokens; this model's context holds {self.context_length} "
                "(prompt and new tokens together): shorten it or drop the conversation's oldest turns"
            )

    def _check_ids(self, prompt_ids: Any) -> list[int]:
        if isinstance(prompt_ids, (str, bytes)) or not isinstance(prompt_ids, (Sequence, np.ndarray)):
            kind = type(prompt_ids).__name__
            raise InputValueError(f"prompt_ids must be a sequence of token ids, got {kind}")
        ids = list(prompt_ids)
        if not ids:
            raise InputValueError("prompt_ids is empty; pass at least one token id")
        vocab = self._vocab_size()
        bad = next((i for i in ids if isinstance(i, bool) or not isinstance(i, (int, np.integer))
                    or not 0 <= i < vocab), None)
        if bad is not None:
            raise InputValueError(f"prompt_ids holds {bad!r}; token ids are whole numbers in [0, {vocab})")
        return [int(i) for i in ids]

    def _step(self, decoder: Any, token: int) -> str:
        return decoder.step(self.tokenizer.tokenizer, token) or ""

    def _vocab_size(self) -> int:
        """The model's vocabulary (its logits' width), which may exceed the tokenizer's."""
        declared = self._model_vocab or (self.manifest.get("architecture") or {}).get("vocab_size")
        return int(declared or self.tokenizer.tokenizer.get_vocab_size())

    def __repr__(self) -> str:
        return f"TextGenerator({self.artifact_dir}, device={self.device})"


def open_generator(artifact: Artifact, request: LoadRequest) -> TextGenerator:
    """The ``onnxruntime-genai`` runner of ``causal-lm`` artifacts (see ``tasks.registry``)."""
    require("llm", f"{artifact.directory}: text generation")
    device = choose_genai_device(request.device, request.providers)
    return TextGenerator(artifact, device, threads=request.threads, prefix_reuse=request.prefix_reuse,
                         cache_tokens=request.cache_tokens, warm_prompt=request.warm_prompt)


def genai_greedy_steps(model: Any, prompt: Sequence[int], new_tokens: int) -> Iterator[int | None]:
    """:meth:`TextGenerator.greedy_steps` on an ``onnxruntime_genai.Model``: the generator is built now, the
    prompt prefilled at the first ``next`` (which yields None), then one greedy token per ``next``."""
    import onnxruntime_genai as og

    total = len(prompt) + new_tokens
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=total, min_length=total, do_sample=False)
    generator = og.Generator(model, params)

    def steps() -> Iterator[int | None]:
        generator.append_tokens(np.asarray([list(prompt)], dtype=np.int32))
        yield None
        for _ in range(new_tokens):
            generator.generate_next_token()
            yield int(generator.get_next_tokens()[0])

    return steps()


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


def _check_cache_tokens(cache_tokens: Any, context_length: int | None) -> int:
    """The kept cache's size in tokens: asked for, else the context length capped at the default."""
    if cache_tokens is None:
        return min(context_length or DEFAULT_CACHE_TOKENS, DEFAULT_CACHE_TOKENS)
    if isinstance(cache_tokens, bool) or not isinstance(cache_tokens, (int, np.integer)) or cache_tokens < 2:
        raise InputValueError(f"cache_tokens must be a whole number of tokens >= 2, got {cache_tokens!r}")
    if context_length is not None and cache_tokens > context_length:
        raise InputValueError(
            f"cache_tokens={cache_tokens} exceeds this model's context of {context_length} tokens"
        )
    return int(cache_tokens)


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
