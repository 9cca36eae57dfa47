"""Experiment trackers: where a run mirrors the numbers of its ``metrics.jsonl``, as ``train.trackers`` says.

Two are built in: TensorBoard (:mod:`lexiedge.train.tensorboard`, event files in ``RUN/tb/``) and MLflow
(:mod:`lexiedge.train.mlflow_tracking`, a local store in ``RUN/mlruns/`` unless told otherwise). Both
receive every record :meth:`~lexiedge.train.run_files.RunFiles.log` writes, already made plain, and
turn the same records into the same curves (:func:`curve_points`), so that metrics.jsonl, TensorBoard
and MLflow never disagree about what was measured at which step.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol

from lexiedge.errors import NotAvailableError

TrackerName = Literal["tensorboard", "mlflow"]

_NOT_SCALARS = ("step", "epoch", "event")  # the x axis and the record's kind
_PER_STEP = ("lr", "train/loss")  # in every optimizer-step line, and again in evaluations


class Tracker(Protocol):
    """What :class:`~lexiedge.train.run_files.RunFiles` needs of a tracker."""

    def log(self, record: dict[str, Any]) -> None:
        """Mirror one plain metrics.jsonl record (non-curve records are ignored)."""

    def close(self, status: str = "completed") -> None:
        """Flush and release; ``status`` is run.json's final one ("completed" or "failed")."""


def curve_points(record: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """The ``(name, value)`` scalars a record adds to the curves, at ``record["step"]``.

    Optimizer-step lines (no ``event``) and evaluations (``event: eval``) are curves; settings changes
    and the learning check are not. An evaluation repeats the step's learning rate (skipped: the step's
    own line already gave it) and carries the mean train loss since the last evaluation, which gets its
    own curve, ``train/loss_mean``, rather than a second ``train/loss`` value at the same step.
    """
    if record.get("event") not in (None, "eval") or not isinstance(record.get("step"), int):
        return
    evaluation = record.get("event") == "eval"
    for key, value in record.items():
        if key in _NOT_SCALARS or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue  # also None (NaN made plain), lists (a confusion matrix), strings
        if evaluation and key in _PER_STEP:
            if key != "train/loss":
                continue
            key = "train/loss_mean"
        yield key, value


def mlflow_installed() -> bool:
    """The mlflow client (``mlflow-skinny`` or the full ``mlflow``) is importable, without importing it."""
    return importlib.util.find_spec("mlflow") is not None


def check_trackers(names: Sequence[str], where: str = "train.trackers") -> None:
    """Refuse, before anything is loaded or trained, a tracker whose package is not installed.

    MLflow is checked; TensorBoard is not: it is on by default, and a run without the tensorboard
    package simply writes no events (metrics.jsonl and history.json hold the same numbers).
    """
    if "mlflow" in names and not mlflow_installed():
        raise NotAvailableError(
            f"{where} asks for mlflow, which is not installed: pip install 'lexiedge[mlflow]'"
        )
