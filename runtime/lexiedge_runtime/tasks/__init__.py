"""The task specs: one torch-free module per task, and the registries that pick a runner by engine.

* :mod:`~lexiedge_runtime.tasks.av_classification` — an audio-visual clip in, a probability per label out;
* :mod:`~lexiedge_runtime.tasks.causal_lm` — chat messages in, generated text out;
* :mod:`~lexiedge_runtime.tasks.spec` — the types a spec is made of (:class:`TaskSpec`, :class:`TensorSpec`,
  :class:`RunnerEntry`, ...);
* :mod:`~lexiedge_runtime.tasks.registry` — the extension points (:func:`register_task`,
  :func:`register_runner`, entry points) and the lookups (:func:`task_spec`, :func:`runner_for`);
* :mod:`~lexiedge_runtime.tasks.schema` — the manifest's JSON Schema generated from the typed sections
  (what runtime-js checks a manifest against).

Trainers, exporters, `lexiedge plan`/`bench`/`eval`/`infer`, the server and runtime-js read these instead
of restating task names, tensor names, thresholds or metrics.
"""

from __future__ import annotations

from lexiedge_runtime.tasks.av_classification import NAME as AV_CLASSIFICATION
from lexiedge_runtime.tasks.causal_lm import NAME as CAUSAL_LM
from lexiedge_runtime.tasks.registry import (
    engine_of,
    find_task,
    known_tasks,
    register_runner,
    register_task,
    runner_entry,
    runner_for,
    task_spec,
)
from lexiedge_runtime.tasks.spec import LoadRequest, RunnerEntry, TaskMetric, TaskSpec, TensorSpec

__all__ = [
    "AV_CLASSIFICATION",
    "CAUSAL_LM",
    "LoadRequest",
    "RunnerEntry",
    "TaskMetric",
    "TaskSpec",
    "TensorSpec",
    "engine_of",
    "find_task",
    "known_tasks",
    "register_runner",
    "register_task",
    "runner_entry",
    "runner_for",
    "task_spec",
]
