"""The models a server holds: each artifact loaded once, with one worker thread that runs its requests.

One worker per model serialises its work: generations of a tutor run one after another (on 2 cores,
two at once only halve each one's speed and double their memory), in arrival order, and a classifier's
decode-and-run likewise (OpenCV's face cascade is not documented as safe to share between threads).
Different models run side by side. A model holds at most ``max_queue`` requests, running or waiting;
one more is refused (503) instead of queueing without end.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lexiedge_runtime import TextGenerator, load, read_manifest
from lexiedge_runtime.classifier import ClassifierRunner
from lexiedge_runtime.errors import LexiedgeError
from lexiedge_runtime.serve.protocol import ApiError
from lexiedge_runtime.tasks import task_spec

T = TypeVar("T")
DEFAULT_MAX_QUEUE = 64


class ServeError(LexiedgeError):
    """The server cannot start as asked (a bad artifact argument, two models with one name)."""

    exit_code = 2


@dataclass
class ServedModel:
    """One loaded artifact under the name clients use for it."""

    name: str
    model: ClassifierRunner | TextGenerator
    max_queue: int = DEFAULT_MAX_QUEUE
    created: int = field(default_factory=lambda: int(time.time()))
    _worker: ThreadPoolExecutor = field(init=False, repr=False)
    _pending: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{self.name}")

    @property
    def task(self) -> str:
        return str(self.model.manifest.get("task", ""))

    @property
    def generates(self) -> bool:
        """A text-generation model (chat endpoints), as its task declares; else a classifier."""
        return task_spec(self.task).generates

    @property
    def pending(self) -> int:
        """Requests of this model running or waiting now."""
        return self._pending

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` on this model's worker, after the requests before it; 503 when the queue is full."""
        self._enter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, work)
        finally:
            self._leave()

    def submit(self, work: Callable[[], Any]) -> asyncio.Future[Any]:
        """Like :meth:`run`, for work that reports through its own channel (a stream); the future ends with it."""
        self._enter()
        future = asyncio.get_running_loop().run_in_executor(self._worker, work)
        future.add_done_callback(lambda _: self._leave())
        return future

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _enter(self) -> None:
        with self._lock:
            if self._pending >= self.max_queue:
                raise ApiError(503, f"model {self.name!r} has {self._pending} requests running or waiting; "
                                    "try again shortly", kind="server_error", code="overloaded")
            self._pending += 1

    def _leave(self) -> None:
        with self._lock:
            self._pending -= 1


def model_name(argument: str) -> tuple[str | None, Path]:
    """``NAME=PATH`` or ``PATH``: the name asked for (None: from the manifest) and the artifact folder."""
    name, sep, path = argument.partition("=")
    if sep and name and "/" not in name and not Path(argument).exists():
        return name, Path(path)
    return None, Path(argument)


def default_name(directory: Path) -> str:
    """``<model>-<target>`` from the manifest (``qwen-lora-onnx-int4``), else the folder's name."""
    manifest = read_manifest(directory)
    model, target = manifest.get("model"), manifest.get("target")
    return f"{model}-{target}" if isinstance(model, str) and isinstance(target, str) else directory.name


def load_models(arguments: Sequence[str], *, device: str = "auto", threads: int | None = None,
                allow_unverified: bool = False, max_queue: int = DEFAULT_MAX_QUEUE) -> dict[str, ServedModel]:
    """Every artifact loaded once (checked as ``lexiedge_runtime.load`` checks them), by name."""
    if not arguments:
        raise ServeError("no artifact to serve: pass one or more artifact directories (NAME=PATH to name one)")
    served: dict[str, ServedModel] = {}
    for argument in arguments:
        name, directory = model_name(argument)
        name = name or default_name(directory)
        if name in served:
            raise ServeError(f"two artifacts would be served as {name!r}: name one of them with NAME=PATH")
        model = load(directory, device, threads=threads, allow_unverified=allow_unverified)
        served[name] = ServedModel(name, model, max_queue=max_queue)
    return served
