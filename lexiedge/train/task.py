"""The engine's view of a task: :class:`lexiedge.api.TrainTask` (the contract lives with the other
plugin contracts), and how the engine compares values of its best metric."""

from __future__ import annotations

from lexiedge.api import MetricMode, TrainTask

__all__ = ["MetricMode", "TrainTask", "is_better"]


def is_better(value: float, best: float | None, mode: MetricMode) -> bool:
    """Whether ``value`` improves on ``best`` (``None``: nothing yet, so any finite value does)."""
    if value != value:  # NaN never wins
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best
