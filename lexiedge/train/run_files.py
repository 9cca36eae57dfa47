"""Writing a run's bookkeeping files beside its checkpoints (rank 0 only); the layout is :mod:`lexiedge.rundir`'s.

    run.json        what ran (model, plugins, versions, world size) and how far it got (status, step, best);
                    ``changes``: settings a resume changed (see :mod:`lexiedge.train.resume`)
    history.json    one row per evaluation: train loss and metrics, val metrics, lr, samples/s, peak memory
    metrics.jsonl   one JSON line per logged optimizer step and per evaluation, appended as training goes
                    (and the same numbers to the trackers train.trackers names, see
                    :mod:`lexiedge.train.trackers`: TensorBoard in tb/, MLflow in mlruns/ or its tracking URI)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lexiedge import atomic
from lexiedge.rundir import HISTORY_JSON, METRICS_JSONL, RUN_JSON
from lexiedge.train.mlflow_tracking import MLflowScalars
from lexiedge.train.tensorboard import TensorBoardScalars, tensorboard_installed
from lexiedge.train.trackers import Tracker

CHANGES = "changes"  # run.json's list of {"at_step", "time", "changes": {key: [old, new]}}
MLFLOW_RUN = "mlflow"  # run.json's {"tracking_uri", "experiment_id", "run_id"}: what a resume continues


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def plain(value: Any) -> Any:
    """JSON-safe (and ``weights_only``-safe) copies: numpy and torch scalars become numbers, NaN becomes None."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays/scalars, tensors
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The plain numbers of a metrics dict (what the console line and the progress bar show)."""
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}


@dataclass(frozen=True)
class MLflowTarget:
    """Where and as what a run is tracked in MLflow (resolved by the engine from the settings)."""

    tracking_uri: str
    experiment: str
    run_name: str
    params: Mapping[str, Any]  # flat settings, logged once when the MLflow run is created


class RunFiles:
    """Reads and writes one run directory's bookkeeping files; a no-op on ranks other than 0."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.info: dict[str, Any] = {}
        self.log_lines = 0
        self.trackers: list[Tracker] = []

    def open_trackers(
        self, names: Sequence[str], *, purge_after_step: int | None, mlflow: MLflowTarget | None = None
    ) -> list[str]:
        """Mirror what :meth:`log` writes to the trackers named; returns a line per tracker: how to open it.

        TensorBoard is skipped silently when its package is not installed (it is on by default). MLflow
        continues the MLflow run that run.json records, when resuming, and records the one it logs to;
        its package was checked before training started (:func:`lexiedge.train.trackers.check_trackers`).
        """
        if not self.enabled:
            return []
        hints = []
        if "tensorboard" in names and tensorboard_installed():
            events = TensorBoardScalars(self.run_dir, purge_after_step=purge_after_step)
            self.trackers.append(events)
            hints.append(f"TensorBoard: tensorboard --logdir {events.directory}")
        if "mlflow" in names and mlflow is not None:
            recorded = self.info.get(MLFLOW_RUN)
            run = MLflowScalars(
                mlflow.tracking_uri,
                experiment=mlflow.experiment,
                run_name=mlflow.run_name,
                resume_run_id=recorded.get("run_id") if isinstance(recorded, dict) else None,
                params=mlflow.params,
                tags={"lexiedge.run_dir": str(self.run_dir.resolve())},  # from a shared store back to the run
            )
            self.trackers.append(run)
            self.update(**{MLFLOW_RUN: {"tracking_uri": run.uri, "experiment_id": run.experiment_id,
                                        "run_id": run.run_id}})
            hints.append(run.hint())
        return hints

    # run.json
    def start(self, info: dict[str, Any], resumed: bool) -> None:
        if not self.enabled:
            return
        previous = self.read_run_json() if resumed else {}
        self.info = {**previous, **info}
        for change in self.info.get(CHANGES) or []:  # recorded by the pipeline before it knew the step
            if isinstance(change, dict) and change.get("at_step") is None:
                change["at_step"] = info.get("step")
        self.info.setdefault("started", now_iso())
        if resumed:
            self.info["resumed"] = [*previous.get("resumed", []), now_iso()]
        self.info.update(status="running", finished=None)
        self.info.pop("error", None)
        self.write_run_json()

    def update(self, **fields: Any) -> None:
        if not self.enabled:
            return
        self.info.update(fields)
        self.write_run_json()

    def finish(self, status: str, **fields: Any) -> None:
        self.update(status=status, finished=now_iso(), **fields)
        # emptied first, so that a close that fails is not tried again by the engine's finish("failed")
        trackers, self.trackers = self.trackers, []
        for tracker in trackers:
            tracker.close(status)

    def read_run_json(self) -> dict[str, Any]:
        path = self.run_dir / RUN_JSON
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def write_run_json(self) -> None:
        atomic.write_json(self.run_dir / RUN_JSON, plain(self.info), fsync=True)

    # history.json
    def write_history(self, history: list[dict[str, Any]]) -> None:
        if self.enabled:
            atomic.write_json(self.run_dir / HISTORY_JSON, plain(history), fsync=True)

    # metrics.jsonl
    def truncate_log(self, lines: int) -> None:
        """Forget lines logged after the checkpoint a run resumes from (they will be logged again),
        then log the settings changes made at or after it (see :meth:`_log_changes`)."""
        self.log_lines = lines
        path = self.run_dir / METRICS_JSONL
        if self.enabled and path.is_file():
            kept = path.read_text(encoding="utf-8").splitlines(keepends=True)[:lines]
            atomic.write_text(path, "".join(kept))
        self._log_changes()

    def _log_changes(self) -> None:
        """One ``{"event": "changes"}`` line per change recorded in run.json at or after the resumed step.

        A change made when resuming from step s is logged right after step s's lines; truncating back
        to a checkpoint at or before s removes that line, so it is logged again here: every change
        appears once in metrics.jsonl, right where training went on with it.
        """
        resumed_step = self.info.get("step")
        if not isinstance(resumed_step, int):
            return
        for change in self.info.get(CHANGES) or []:
            if isinstance(change, dict) and isinstance(change.get("at_step"), int) and change["at_step"] >= resumed_step:
                self.log({"event": "changes", "step": resumed_step, "changes": change.get("changes", {})})

    def log(self, record: dict[str, Any]) -> None:
        self.log_lines += 1
        if not self.enabled:
            return
        with open(self.run_dir / METRICS_JSONL, "a", encoding="utf-8") as handle:
            record = plain(record)  # once, for the file and for the trackers
            handle.write(json.dumps(record) + "\n")
        for tracker in self.trackers:
            tracker.log(record)

    def write_json(self, name: str, data: Any) -> Path:
        path = self.run_dir / name
        if self.enabled:
            atomic.write_json(path, plain(data), fsync=True)
        return path
