"""An exponential moving average of the trainable weights (``train.ema_decay``).

The weights a step leaves behind jitter with every batch; their running average over the last
~1/(1 - decay) steps is usually a better model, and far less noisy from one evaluation to the next
(Ultralytics' ModelEMA, timm's ModelEmaV3, Polyak averaging). With it on, every evaluation, the best
checkpoint, the final weights and so every export use the average; periodic checkpoints keep the
trained weights (training continues from them) with the average beside them, so a resume is exact.

Only trainable parameters are averaged: for a LoRA run that is the adapter, never a copy of the base.
Buffers (BatchNorm statistics) stay those of the trained model, as in torch's AveragedModel default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


class WeightAverage:
    """``average = decay_t * average + (1 - decay_t) * weights`` after each optimizer step.

    ``decay_t = min(decay, (1 + t) / (10 + t))`` at update ``t``: the first updates follow the weights
    closely, so the random initialisation does not linger in the average (timm's warm-up).
    """

    def __init__(self, parameters: list[torch.nn.Parameter], decay: float) -> None:
        self.parameters = parameters
        self.decay = decay
        self.updates = 0
        self.average = [parameter.detach().clone() for parameter in parameters]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        weight = 1.0 - self.current_decay()
        torch._foreach_lerp_(self.average, [parameter.detach() for parameter in self.parameters], weight)
        self.updates += 1

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the model inside the block, the trained ones back after it."""
        with torch.no_grad():
            trained = [parameter.detach().clone() for parameter in self.parameters]
            torch._foreach_copy_([parameter.data for parameter in self.parameters], self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_([parameter.data for parameter in self.parameters], trained)

    def state_dict(self) -> dict[str, Any]:
        """Plain data for ``trainer_state.pt`` (loads with ``weights_only=True``)."""
        return {"decay": self.decay, "updates": self.updates, "average": [tensor.cpu() for tensor in self.average]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        average = state["average"]
        if len(average) != len(self.parameters) or any(
            saved.shape != parameter.shape for saved, parameter in zip(average, self.parameters)
        ):
            raise ValueError("the checkpoint's weight average does not match the model's trainable parameters")
        self.updates = int(state["updates"])
        self.average = [saved.to(parameter.device, parameter.dtype) for saved, parameter in zip(average, self.parameters)]
