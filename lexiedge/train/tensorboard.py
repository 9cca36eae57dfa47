"""The numbers of ``metrics.jsonl`` mirrored as TensorBoard scalars in ``RUN/tb/``.

Written through ``torch.utils.tensorboard`` when the ``tensorboard`` package is installed (the
``tensorboard`` extra); without it, nothing (metrics.jsonl and history.json hold the same numbers).
Every optimizer-step line (train loss, learning rate) and every evaluation (train and validation
metrics, samples/s, peak memory) becomes a scalar at its optimizer step. A resumed run purges the
events after the checkpoint it resumes from, as it truncates metrics.jsonl, so a killed and resumed
run shows one curve, not two. Which numbers become which curves (the same as in MLflow):
:func:`lexiedge.train.trackers.curve_points`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from lexiedge.rundir import TENSORBOARD_DIR
from lexiedge.train.trackers import curve_points


def tensorboard_installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardScalars:
    """A SummaryWriter over ``run_dir/tb`` (or nothing when TensorBoard is not installed)."""

    def __init__(self, run_dir: Path, *, purge_after_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.directory = run_dir / TENSORBOARD_DIR
        purge_step = purge_after_step + 1 if purge_after_step is not None else None
        self._writer = SummaryWriter(log_dir=str(self.directory), purge_step=purge_step)

    def log(self, record: dict[str, Any]) -> None:
        for key, value in curve_points(record):
            self._writer.add_scalar(key, value, global_step=record["step"])
        if record.get("event") == "eval":
            self._writer.flush()  # an evaluation is worth seeing now, not at the next flush interval

    def close(self, status: str = "completed") -> None:
        self._writer.close()
