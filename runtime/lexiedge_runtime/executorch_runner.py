"""The ExecuTorch runner of ``av-classification`` artifacts (engine ``executorch``: ``model.pte``).

The one module of the runtime that may import torch (docs/architecture.md): ExecuTorch's Python
runtime takes and returns torch tensors. Nothing imports it until an artifact of engine ``executorch``
is opened (the task spec names it as a ``"module:function"`` string), and it imports ExecuTorch and
torch only then; without them the artifact is refused in one line naming the extra
(``pip install 'lexiedge-runtime[executorch]'``).

The program is lowered for one clip (batch 1, the shape a phone runs; samples and frames dynamic within
the bounds the manifest's ``runtime`` records), so a batch runs clip by clip.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.classifier import ClassifierRunner
from lexiedge_runtime.errors import (
    ArtifactError,
    DeviceNotAvailableError,
    InferenceError,
    InputValueError,
    first_line,
)
from lexiedge_runtime.extras import require
from lexiedge_runtime.io_names import INPUT_NAMES, LOGITS, PROBABILITIES
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
    if request.cache_tokens is not None or request.warm_prompt is not None:
        raise InputValueError(
            f"{artifact.directory} is a classifier: cache_tokens and warm_prompt apply to text generation"
        )
    if request.providers:
        raise InputValueError(
            f"{artifact.directory} runs on ExecuTorch: providers apply to ONNX Runtime artifacts"
        )
    if request.device.lower() not in ("auto", "cpu"):
        raise DeviceNotAvailableError(
            f"device {request.device!r}: ExecuTorch artifacts run on the CPU (XNNPACK); expected auto or cpu"
        )
    return ExecutorchClassifier(artifact, threads=request.threads)
