"""The training progress bar: steps, samples/s, loss, ETA; silent on ranks other than 0."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lexiedge.train.run_files import scalars

if TYPE_CHECKING:
    from rich.console import Console


class TrainProgress:
    def __init__(self, console: Console, enabled: bool, total_steps: int, start_step: int, description: str) -> None:
        self.console = console
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TextColumn("{task.fields[rate]:>8.1f} samples/s"),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self._task = self._progress.add_task(description, total=total_steps, completed=start_step, rate=0.0, loss=float("nan"))

    def __enter__(self) -> TrainProgress:
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self._progress.stop()

    def update(self, step: int, samples_per_s: float, loss: float) -> None:
        if self.enabled:
            self._progress.update(self._task, completed=step, rate=samples_per_s, loss=loss)

    def print(self, message: str) -> None:
        """A line above the bar (evaluations, warnings), on rank 0 only; never wrapped by rich, so a log
        or a pipe keeps each message on one line (a terminal still wraps it on screen)."""
        if self.enabled:
            self._progress.console.print(message, soft_wrap=True)


def eval_line(row: dict[str, Any]) -> str:
    """``epoch 2.00 step 24 | train loss 0.41 uar 0.87 | val loss 0.52 uar 0.81 | 850 samples/s, peak 310 MB``."""
    parts = [f"epoch {row['epoch']:.2f} step {row['step']}"]
    for split in ("train", "val"):
        values = [(key.split("/", 1)[1], value) for key, value in scalars(row).items() if key.startswith(f"{split}/")]
        if values:
            parts.append(split + " " + " ".join(f"{name} {value:.4g}" for name, value in values if name != "samples"))
    parts.append(f"{row['samples_per_s']:.0f} samples/s, peak {row['peak_memory_mb']:.0f} MB")
    return " | ".join(parts)
