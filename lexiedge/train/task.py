"""What a trainer plugin tells the engine: its loss, its metrics and what a checkpoint holds.

The engine (:class:`lexiedge.train.engine.Engine`) knows nothing about classification or language
modelling; everything task-specific goes through this protocol. A trainer plugin usually implements
it on itself (``Engine(job, settings, built, splits, task=self)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterable

    import torch

    from lexiedge.api import BuiltModel

MetricMode = Literal["max", "min"]


@runtime_checkable
class TrainTask(Protocol):
    """The task-specific half of training.

    Required: :meth:`loss`, :meth:`evaluate`, :attr:`best_metric`, :meth:`checkpoint_state` and
    :meth:`load_checkpoint_state`. Optional (looked up with ``getattr``; leave them out when not needed):

    - ``train_metrics() -> dict``: metrics of the training batches seen since the last call (for
      example running accuracy collected inside :meth:`loss`), then reset; the engine stores them
      as ``train/<key>`` next to the train loss it tracks itself. Under DDP, rank 0's share only.
    - ``trainable_parameters(built) -> list[Parameter]``: what the optimizer updates (default: every
      parameter with ``requires_grad``); :class:`lexiedge.api.TrainerPlugin` already has it.
    - ``chance_level() -> float | None``: the value of :attr:`best_metric` that guessing scores (1/classes
      for UAR); with it the engine warns once when a run is still about there after ``learning_check``
      of its epochs (see :class:`~lexiedge.train.settings.EngineSettings`).
    - ``on_run_end(built, run_dir, splits, history) -> dict``: called once on rank 0 after training,
      after ``test_metrics.json`` was written, with ``built`` holding the best weights (the final
      ones when there was no validation split); its dict is merged into the run's result metrics
      (plots, extra reports).
    """

    #: The metric that chooses ``checkpoints/best/``: a key of the evaluation results prefixed with
    #: the split (``"val/uar"``), and whether larger or smaller is better.
    best_metric: tuple[str, MetricMode]

    def loss(self, built: BuiltModel, batch: dict[str, Any]) -> torch.Tensor:
        """The mean training loss of one micro-batch (already on the training device)."""
        ...

    def evaluate(self, built: BuiltModel, loader: Iterable[dict[str, Any]], split: str) -> dict[str, Any]:
        """Metrics over a whole split: scalars (``loss``, ``uar``) and JSON-able extras (``confusion``).

        Called in eval mode under ``torch.no_grad()`` and the training autocast; ``loader`` yields
        batches already on the device. Keys come back unprefixed; the engine prefixes the split.
        """
        ...

    def checkpoint_state(self, built: BuiltModel) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint saves (all weights for full training, the adapter only for LoRA)."""
        ...

    def load_checkpoint_state(self, built: BuiltModel, state: dict[str, torch.Tensor]) -> None:
        """Put tensors saved by :meth:`checkpoint_state` back into the model."""
        ...


def task_hook(task: object, name: str) -> Any | None:
    """An optional :class:`TrainTask` method, or ``None`` when the task does not define it."""
    hook = getattr(task, name, None)
    return hook if callable(hook) else None


def is_better(value: float, best: float | None, mode: MetricMode) -> bool:
    """Whether ``value`` improves on ``best`` (``None``: nothing yet, so any finite value does)."""
    if value != value:  # NaN never wins
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best

