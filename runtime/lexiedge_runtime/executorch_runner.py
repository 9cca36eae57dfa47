"""The ExecuTorch runners (engine ``executorch``: ``model.pte``) of ``av-classification`` and ``causal-lm``
artifacts.

The one module of the runtime that may import torch (docs/architecture.md): ExecuTorch's Python
runtime takes and returns torch tensors. Nothing imports it until an artifact of engine ``executorch``
is opened (the task spec names it as a ``"module:function"`` string), and it imports ExecuTorch and
torch only then; without them the artifact is refused in one line naming the extra
(``pip install 'lexiedge-runtime[executorch]'``).

A classifier's program is lowered for one clip (batch 1, the shape a phone runs; samples and frames
dynamic within the bounds the manifest's ``runtime`` records), so a batch runs clip by clip. A causal LM's
program (ExecuTorch's Llama recipe) holds its KV cache inside: ``forward(tokens, input_pos)`` writes the
keys and values of positions ``input_pos ..`` and returns the last position's logits
(:class:`ExecutorchGenerator`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.chat import ChatTokenizer, check_messages
from lexiedge_runtime.classifier import ClassifierRunner
from lexiedge_runtime.errors import (
    ArtifactError,
    InferenceError,
    InputValueError,
    first_line,
)
from lexiedge_runtime.extras import require
from lexiedge_runtime.generator import (
    Prompt,
    TextGenerator,
    _check_cache_tokens,
    _eos_ids,
    _Options,
    _Prefill,
)
from lexiedge_runtime.io_names import INPUT_NAMES, LOGITS, PROBABILITIES
from lexiedge_runtime.kv_cache import common_prefix_length
from lexiedge_runtime.tasks.spec import LoadRequest

ENGINE = "executorch"
GRAPH = "model.pte"
OUTPUT_NAMES = (LOGITS, PROBABILITIES)  # the program's outputs, in order
# loggers that speak while ExecuTorch imports (torchao's optional CUDA kernels, a torch deprecation notice):
# nothing an app can act on
_IMPORT_LOGGERS = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_import() -> Iterator[None]:
    """ExecuTorch's import without the log lines of the libraries it pulls in (see _IMPORT_LOGGERS)."""
    loggers = [logging.getLogger(name) for name in _IMPORT_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _runtime() -> Any:
    """ExecuTorch's Python runtime (``executorch.runtime.Runtime``), imported on first use."""
    require("executorch", "running an ExecuTorch (.pte) artifact")
    with quiet_import():
        from executorch.runtime import Runtime

    return Runtime.get()


_programs_opened = 0  # programs opened in this process: XNNPACK's delegates hold the thread pool from then on


def set_threads(threads: int | None) -> None:
    """XNNPACK's thread pool size, before the first program opens.

    The pool is process-wide in ExecuTorch, and resizing it under a program already opened corrupts the
    heap (glibc aborts: "malloc(): mismatching next->prev_size"), so a later program must ask for the size
    the pool has (or for none)."""
    if threads is None:
        return
    if threads < 1:
        raise InputValueError(f"threads must be a positive number of threads, got {threads}")
    from executorch.extension.pybindings.portable_lib import (
        _threadpool_get_thread_count,
        _unsafe_reset_threadpool,
    )

    current = _threadpool_get_thread_count()
    if threads == current:
        return
    if _programs_opened:
        raise InputValueError(
            f"threads={threads}: ExecuTorch's thread pool is process-wide and already runs {current} threads "
            "for a program opened earlier; open every ExecuTorch artifact of a process with the same threads"
        )
    _unsafe_reset_threadpool(threads)


class PteProgram:
    """A classifier's ``.pte`` program called like any verification runner: feeds by name (numpy, any batch)
    in, ``{"logits", "probabilities"}`` (numpy, one row per clip) out. The exporter verifies the artifact
    through this class, so what was verified is what apps run."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        global _programs_opened
        runtime = _runtime()
        set_threads(threads)
        try:
            self._method = runtime.load_program(Path(path)).load_method("forward")
        except Exception as exc:  # ExecuTorch's errors are RuntimeErrors with its status code: one line
            said = " ".join(str(exc).split()) or type(exc).__name__
            raise ArtifactError(f"{path}: ExecuTorch cannot load the program: {said[:300]}") from None
        if self._method is None:
            raise ArtifactError(f"{path}: the program has no 'forward' method")
        _programs_opened += 1
        self.path = Path(path)

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        rows = len(feeds[INPUT_NAMES[0]])
        results: list[list[np.ndarray]] = []
        for row in range(rows):
            inputs = [
                torch.from_numpy(np.ascontiguousarray(feeds[name][row : row + 1])) for name in INPUT_NAMES
            ]
            outputs = self._method.execute(inputs)
            results.append([np.asarray(output.detach().numpy(), np.float32).copy() for output in outputs])
        return {
            name: np.concatenate([result[index] for result in results])
            for index, name in enumerate(OUTPUT_NAMES)
        }


class ExecutorchClassifier(ClassifierRunner):
    """Runs an ``av-classification`` artifact's ``model.pte`` with ExecuTorch (XNNPACK on the CPU)."""

    provider = "XnnpackBackend"

    def __init__(self, artifact: Artifact, *, threads: int | None = None) -> None:
        super().__init__(artifact)
        graph = artifact.path(artifact.runtime.get("graph") or GRAPH)
        self.program = PteProgram(graph, threads=threads)

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The program on ready feeds, clip by clip: (logits, probabilities), each (batch, classes)."""
        try:
            outputs = self.program(feeds)
        except Exception as exc:  # a shape outside the lowered bounds: the input, not a crash
            first = first_line(exc)
            shapes = ", ".join(f"{name} {tuple(array.shape)}" for name, array in feeds.items())
            raise InferenceError(f"ExecuTorch could not run the classifier on {shapes}: {first}") from None
        return outputs[LOGITS], outputs[PROBABILITIES]


def open_executorch_classifier(artifact: Artifact, request: LoadRequest) -> ExecutorchClassifier:
    """The ``executorch`` runner of ``av-classification`` artifacts (see ``tasks.registry``): CPU only."""
    request.refuse_generation_options(artifact.directory)
    request.require_cpu(artifact.directory, "ExecuTorch", "the CPU (XNNPACK)")
    return ExecutorchClassifier(artifact, threads=request.threads)


# --- causal-lm: the program of ExecuTorch's Llama recipe, its KV cache inside --------------------------

# kernels the recipe's programs call outside XNNPACK: its SDPA and cache ops, the quantized ops
LLM_KERNEL_MODULES = (
    "executorch.extension.llm.custom_ops.custom_ops",
    "executorch.kernels.quantized",
)


def _llm_runtime() -> Any:
    """ExecuTorch's runtime with the LLM recipe's kernels registered (they must be before a program loads)."""
    import importlib

    runtime = _runtime()
    with quiet_import():
        for module in LLM_KERNEL_MODULES:
            importlib.import_module(module)
    return runtime


def _metadata(program: Any, name: str) -> Any:
    """A constant the recipe stores as a method of the program (``get_max_context_len``, ...), or None."""
    if name not in program.method_names:
        return None
    values = program.load_method(name).execute([])
    return values[0] if len(values) == 1 else list(values)


class ExecutorchGenerator(TextGenerator):
    """Runs a ``causal-lm`` artifact's ``model.pte`` (ExecuTorch's Llama recipe: q8da4w, XNNPACK, KV cache in
    the program). Build it with :func:`lexiedge_runtime.load`.

    Everything above the token loop is :class:`~lexiedge_runtime.generator.TextGenerator`'s, so prompts,
    the chat template, options, stop strings, streaming and their checks are the same for both engines;
    the loop here feeds the program (``forward(tokens, input_pos)``) and picks tokens itself (greedy, or
    top-p sampling with numpy's generator, seeded by ``seed``).

    Prefix reuse: the program's cache keeps the keys and values of the last call's ids; the next call
    prefills only what its prompt does not share with them (the program's attention reads positions
    below ``input_pos + n`` only, so rewinding is a position). One call uses the program at a time; a
    call that finds it busy (another thread, or a stream of this one not yet exhausted or closed) loads the
    program a second time for itself (two methods of one program share one cache) and leaves the kept
    cache as it was.

    Memory: the program plans its KV cache for the whole context (``context_length`` positions) when it
    loads; ``clear_cache()`` forgets what it holds but frees nothing.
    """

    def __init__(
        self,
        artifact: Artifact,
        *,
        threads: int | None = None,
        prefix_reuse: bool = True,
        cache_tokens: int | None = None,
        warm_prompt: Prompt | None = None,
    ) -> None:
        global _programs_opened
        self.artifact_dir = artifact.directory
        self.manifest = artifact.manifest
        self.device = "cpu"
        self.tokenizer = ChatTokenizer(artifact)  # files and template checked before the program loads
        runtime = _llm_runtime()
        set_threads(threads)
        graph = self._graph = Path(artifact.path(artifact.runtime.get("graph") or GRAPH))
        self._runtime = runtime
        try:
            self._program = runtime.load_program(graph)
            self.model = self._program.load_method("forward")
            context = _metadata(self._program, "get_max_context_len")
            self._max_tokens_per_call = int(_metadata(self._program, "get_max_seq_len") or context)
            vocab = _metadata(self._program, "get_vocab_size")
            program_eos = _metadata(self._program, "get_eos_ids")
        except Exception as exc:  # ExecuTorch's errors are RuntimeErrors with its status code: one line
            said = " ".join(str(exc).split()) or type(exc).__name__
            raise ArtifactError(f"{graph}: ExecuTorch cannot load the program: {said[:300]}") from None
        if context is None:
            raise ArtifactError(
                f"{graph}: not an LLM program of ExecuTorch's recipe (no get_max_context_len)"
            )
        _programs_opened += 1
        self.context_length = int(context)
        self._model_vocab = int(vocab) if vocab is not None else None
        self.eos_token_ids = _eos_ids({"model": {"eos_token_id": program_eos}}, artifact.manifest)
        self.prefix_reuse = bool(prefix_reuse)
        self.cache_tokens = _check_cache_tokens(cache_tokens, self.context_length)
        self._kept_ids: list[int] = []  # ids whose keys and values the kept cache holds, positions 0..n-1
        self._busy = threading.Lock()  # held by the call using self.model
        self._counters = threading.Lock()
        self.prefilled_tokens = 0
        self.reused_tokens = 0
        if warm_prompt is not None:
            self.warm(warm_prompt)

    # --- what TextGenerator's calls come down to ------------------------------------------------------

    def warm(self, messages_or_prompt: Prompt) -> int:
        if isinstance(messages_or_prompt, str):
            prompt = self.tokenizer.prompt_ids(messages_or_prompt)
        else:
            messages = check_messages(messages_or_prompt)
            prompt = self.tokenizer.encode(self.tokenizer.render(messages, add_generation_prompt=False))
        self._check_fits(prompt)
        if not self.prefix_reuse or len(prompt) >= self.cache_tokens:
            return 0
        if not self._busy.acquire(blocking=False):  # a call is running: it owns the cache
            return 0
        try:
            reused = self._prefill(self.model, self._kept_ids, prompt, need_logits=False)[0]
        finally:
            self._busy.release()
        return len(prompt) - reused

    def greedy_steps(self, prompt_ids: Sequence[int], new_tokens: int) -> Iterator[int | None]:
        """A benchmark's timed path: greedy decoding from an empty cache, EOS suppressed so every step runs;
        yields None once the prompt is prefilled, then each of the ``new_tokens`` ids."""
        prompt = self._check_ids(prompt_ids)
        if len(prompt) + new_tokens > self.context_length:
            raise InputValueError(
                f"{len(prompt)} prompt + {new_tokens} new tokens exceed this program's context of "
                f"{self.context_length}"
            )
        eos = sorted(self.eos_token_ids)

        def steps() -> Iterator[int | None]:
            with self._leased() as (method, kept):
                kept.clear()
                _, logits = self._prefill(method, kept, prompt, need_logits=True)
                yield None
                for step in range(new_tokens):
                    logits[eos] = -np.inf
                    token = int(np.argmax(logits))
                    yield token
                    if step + 1 < new_tokens:
                        logits = self._forward(method, [token], len(kept), prompt)
                        kept.append(token)

        return steps()

    def teacher_forced(self, prompt_ids: Sequence[int], follow_ids: Sequence[int]) -> list[np.ndarray]:
        """Verification's path: the last position's logits after the prompt, then after each of ``follow_ids``
        fed one at a time through the KV cache (from an empty cache; ``len(follow_ids) + 1`` rows)."""
        prompt, follow = self._check_ids(prompt_ids), [int(i) for i in follow_ids]
        with self._leased() as (method, kept):
            kept.clear()
            _, logits = self._prefill(method, kept, prompt, need_logits=True)
            rows = [logits]
            for token in follow:
                rows.append(self._forward(method, [token], len(kept), prompt))
                kept.append(token)
        return rows

    def clear_cache(self) -> None:
        """Forget the kept keys and values (the next call prefills all); the memory stays planned."""
        with self._busy:
            self._kept_ids.clear()

    def _tokens(self, prompt: list[int], options: _Options, prefill: _Prefill) -> Generator[int, None, None]:
        rng = np.random.default_rng(options.seed) if options.temperature > 0 else None
        with self._leased() as (method, kept):
            if not self.prefix_reuse or len(prompt) + options.max_new_tokens > self.cache_tokens:
                kept.clear()
            prefill.reused_tokens, logits = self._prefill(method, kept, prompt, need_logits=True)
            for step in range(options.max_new_tokens):
                token = _pick(logits, options, rng)
                yield token
                last = step + 1 == options.max_new_tokens or len(kept) >= self.context_length
                if last or token in self.eos_token_ids:
                    return
                logits = self._forward(method, [token], len(kept), prompt)
                kept.append(token)

    # --- the program ----------------------------------------------------------------------------------

    @contextmanager
    def _leased(self) -> Iterator[tuple[Any, list[int]]]:
        """The kept method and its ids when free, else a method (and cache) of this call's own."""
        if self._busy.acquire(blocking=False):
            try:
                yield self.model, self._kept_ids
            finally:
                self._busy.release()
        else:
            try:  # a second method of the same program would share its cache: a second program
                method = self._runtime.load_program(self._graph).load_method("forward")
            except Exception as exc:
                raise InferenceError(f"ExecuTorch could not open a second cache: {first_line(exc)}") from None
            yield method, []

    def _prefill(self, method: Any, kept: list[int], prompt: list[int], *,
                 need_logits: bool) -> tuple[int, np.ndarray]:
        """Run what ``prompt`` does not share with ``kept`` (the last token always, with ``need_logits``);
        returns (ids reused, the last position's logits). Afterwards ``kept`` is ``prompt``."""
        limit = len(prompt) - 1 if need_logits else len(prompt)
        reused = common_prefix_length(kept, prompt, limit)
        del kept[reused:]
        logits = np.zeros(0, np.float32)
        for start in range(reused, len(prompt), self._max_tokens_per_call):
            chunk = prompt[start : start + self._max_tokens_per_call]
            logits = self._forward(method, chunk, start, prompt)
            kept.extend(chunk)
        self._count(prefilled=len(prompt) - reused, reused=reused)
        return reused, logits

    def _forward(self, method: Any, ids: list[int], start: int, prompt: list[int]) -> np.ndarray:
        import torch

        try:
            tokens, position = torch.tensor([ids], dtype=torch.long), torch.tensor([start], dtype=torch.long)
            outputs = method.execute([tokens, position])
        except Exception as exc:
            if method is self.model:
                self._kept_ids.clear()  # what the cache holds is unknown after a failure
            raise InferenceError(
                f"ExecuTorch failed on a {len(prompt)}-token prompt at position {start}: {first_line(exc)}"
            ) from None
        logits = outputs[0].detach().float().numpy()
        return np.array(logits.reshape(-1, logits.shape[-1])[-1], dtype=np.float32)

    def __repr__(self) -> str:
        return f"ExecutorchGenerator({self.artifact_dir})"


def _pick(logits: np.ndarray, options: _Options, rng: np.random.Generator | None) -> int:
    """Greedy at temperature 0, else a draw from the top-p nucleus of the tempered distribution."""
    if rng is None:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / options.temperature
    probabilities = np.exp(scaled - scaled.max())
    probabilities /= probabilities.sum()
    order = np.argsort(-probabilities)
    cumulative = np.cumsum(probabilities[order])
    keep = order[: int(np.searchsorted(cumulative, options.top_p)) + 1]
    kept = probabilities[keep] / probabilities[keep].sum()
    return int(rng.choice(keep, p=kept))


def open_executorch_generator(artifact: Artifact, request: LoadRequest) -> ExecutorchGenerator:
    """The ``executorch`` runner of ``causal-lm`` artifacts (see ``tasks.registry``): CPU only."""
    require("llm", f"{artifact.directory}: text generation")
    request.require_cpu(artifact.directory, "ExecuTorch", "the CPU (XNNPACK)")
    return ExecutorchGenerator(artifact, threads=request.threads, prefix_reuse=request.prefix_reuse,
                               cache_tokens=request.cache_tokens, warm_prompt=request.warm_prompt)
