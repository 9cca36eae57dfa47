"""The runtime's two extension points, declared and documented here (pytest's ``hookspec.py`` is the model).

**Tasks** — :func:`register_task` (a :class:`~lexiedge_runtime.tasks.spec.TaskSpec`). A task is what an
artifact does for an app ("av-classification", "causal-lm"): its graph's signature, its manifest
section and the check of it (run by :func:`lexiedge_runtime.artifact.read_manifest` on every
artifact of the task), default verification thresholds, the task metric, whether it generates text.
Looked up by the manifest's ``task``; an unknown task is an :class:`ArtifactError` listing the known.

**Runners** — :func:`register_runner` (a :class:`~lexiedge_runtime.tasks.spec.RunnerEntry`). A runner
runs artifacts of one ``engine`` (the manifest's ``runtime.engine``: "onnxruntime",
"onnxruntime-genai") for one task. :func:`lexiedge_runtime.load` opens an artifact with the runner
of its engine, so a new export format (ExecuTorch, LiteRT, TensorRT, ...) is an exporter plugin that
writes ``runtime.engine: <its engine>`` plus a runner registered here: no table of the runtime or of
the toolkit changes. The runner's ``opener(artifact, request)`` returns an object with the task's
interface: for ``av-classification`` a :class:`~lexiedge_runtime.classifier.Classifier`-like object
(``predict``, ``run(feeds) -> (logits, probabilities)``, ``labels``, ``spec``); for ``causal-lm`` a
:class:`~lexiedge_runtime.generator.TextGenerator`-like one (``generate``, ``generate_ids``,
``greedy_steps``, ``tokenizer``). `lexiedge bench` times any runner through that interface.

Outside packages register through entry points, read once on the first lookup the built-ins miss:

    [project.entry-points."lexiedge_runtime.tasks"]
    my-task = "my_package.task:SPEC"            # a TaskSpec
    [project.entry-points."lexiedge_runtime.runners"]
    my-engine = "my_package.runner:RUNNERS"     # a RunnerEntry, or a sequence of them

or in process with :func:`register_task` / :func:`register_runner` (tests, apps embedding a runner).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from typing import Any

from lexiedge_runtime.errors import ArtifactError
from lexiedge_runtime.tasks import av_classification, causal_lm
from lexiedge_runtime.tasks.spec import RunnerEntry, TaskSpec, resolve

TASK_GROUP = "lexiedge_runtime.tasks"
RUNNER_GROUP = "lexiedge_runtime.runners"

_tasks: dict[str, TaskSpec] = {}
_runners: dict[tuple[str, str], RunnerEntry] = {}  # (engine, task) -> entry
_entry_points_read = False


def register_task(spec: TaskSpec) -> TaskSpec:
    """Make ``spec`` the task of artifacts whose manifest says ``task: spec.name``; a second spec of one
    name is an error (a task is declared once)."""
    known = _tasks.get(spec.name)
    if known is not None and known is not spec:
        raise ValueError(f"task {spec.name!r} is declared twice")
    _tasks[spec.name] = spec
    return spec


def register_runner(entry: RunnerEntry) -> RunnerEntry:
    """Run artifacts of ``entry.engine`` and ``entry.task`` with ``entry.opener``; the last registration of an
    (engine, task) pair wins, so an app may replace a built-in runner."""
    _runners[(entry.engine, entry.task)] = entry
    return entry


def task_spec(name: str, where: str = "") -> TaskSpec:
    """The spec of task ``name``, or an :class:`ArtifactError` naming the known ones."""
    if find_task(name) is None:
        prefix = f"{where}: " if where else ""
        raise ArtifactError(
            f"{prefix}task {name!r} is not one this runtime runs ({', '.join(sorted(_tasks))})"
        )
    return _tasks[name]


def find_task(name: str) -> TaskSpec | None:
    """The spec of task ``name``, or None when no installed package declares it."""
    if name not in _tasks:
        _read_entry_points()
    return _tasks.get(name)


def known_tasks() -> list[str]:
    _read_entry_points()
    return sorted(_tasks)


def runner_entry(engine: str, task: str, where: str = "") -> RunnerEntry:
    """The runner of ``engine`` artifacts of ``task``, or an :class:`ArtifactError` naming the engines known
    for the task."""
    if (engine, task) not in _runners:
        _read_entry_points()
    if (engine, task) not in _runners:
        prefix = f"{where}: " if where else ""
        engines = sorted(e for e, t in _runners if t == task)
        raise ArtifactError(
            f"{prefix}no runner for engine {engine!r} (runtime.engine) of task {task!r} is installed; "
            f"this runtime runs {task} artifacts on {', '.join(engines) or 'no engine'}"
        )
    return _runners[(engine, task)]


def engine_of(manifest: dict[str, Any], where: str = "") -> str:
    """The engine an artifact names (``runtime.engine``), else its task's default (for older artifacts)."""
    runtime = manifest.get("runtime") or {}
    engine = runtime.get("engine") if isinstance(runtime, dict) else None
    return (
        engine
        if isinstance(engine, str) and engine
        else task_spec(str(manifest.get("task")), where).default_engine
    )


def runner_for(manifest: dict[str, Any], where: str = "") -> RunnerEntry:
    """The runner an artifact's manifest asks for: its engine and its task."""
    task = task_spec(str(manifest.get("task")), where)
    return runner_entry(engine_of(manifest, where), task.name, where)


def _read_entry_points() -> None:
    """Register what installed packages announce (once; a broken entry point is skipped, not fatal)."""
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    for point in importlib.metadata.entry_points(group=TASK_GROUP):
        for spec in _loaded(point):
            if isinstance(spec, TaskSpec) and spec.name not in _tasks:
                register_task(spec)
    for point in importlib.metadata.entry_points(group=RUNNER_GROUP):
        for entry in _loaded(point):
            if isinstance(entry, RunnerEntry) and (entry.engine, entry.task) not in _runners:
                register_runner(entry)


def _loaded(point: importlib.metadata.EntryPoint) -> Iterable[Any]:
    try:
        value = resolve(point.value, f"entry point {point.name!r}")
    except ArtifactError:
        return ()
    return value if isinstance(value, (list, tuple)) else (value,)


BUILT_IN_TASKS = (av_classification.SPEC, causal_lm.SPEC)
for _module in (av_classification, causal_lm):  # the built-ins, registered as an outside package would be
    register_task(_module.SPEC)
    for _entry in _module.RUNNERS:
        register_runner(_entry)
