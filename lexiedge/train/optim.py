"""The optimizer and the learning-rate schedule: AdamW, linear warmup, cosine decay to a floor (once, or in
cycles restarting at the full rate: warm restarts)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from lexiedge.errors import NotAvailableError

if TYPE_CHECKING:
    from lexiedge.train.settings import EngineSettings


@dataclass(frozen=True)
class Schedule:
    """Linear warmup over ``warmup_steps``, then a half cosine from ``base_lr`` down to
    ``min_lr_ratio * base_lr``; with ``restart_steps``, a half cosine per cycle of that many steps, each
    starting again at ``base_lr``."""

    base_lr: float
    total_steps: int
    warmup_steps: int
    min_lr_ratio: float = 0.0
    restart_steps: int | None = None

    @classmethod
    def from_settings(cls, settings: EngineSettings, total_steps: int, steps_per_epoch: int = 1) -> Schedule:
        restart_epochs = getattr(settings, "restart_epochs", None)
        return cls(
            base_lr=settings.lr,
            total_steps=total_steps,
            warmup_steps=round(settings.warmup_ratio * total_steps),
            min_lr_ratio=settings.min_lr_ratio,
            restart_steps=restart_epochs * steps_per_epoch if restart_epochs else None,
        )

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based); past the end it stays at the floor."""
        return lr_at(step, self.base_lr, self.total_steps, self.warmup_steps, self.min_lr_ratio,
                     self.restart_steps)

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {
            "kind": "warmup-cosine-restarts" if self.restart_steps else "warmup-cosine",
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "min_lr_ratio": self.min_lr_ratio,
            "restart_steps": self.restart_steps,
        }


def lr_at(step: int, base_lr: float, total_steps: int, warmup_steps: int, min_lr_ratio: float,
          restart_steps: int | None = None) -> float:
    """nanoGPT's get_lr: warmup never starts at 0 (step 0 would be wasted), cosine ends at the floor.

    With ``restart_steps`` the cosine restarts at ``base_lr`` every that many steps after warmup (SGDR with
    T_mult 1, as torch's CosineAnnealingWarmRestarts); the last cycle may be cut short by the end of the run.
    """
    min_lr = base_lr * min_lr_ratio
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    if step >= total_steps:
        return min_lr
    if restart_steps:
        progress = ((step - warmup_steps) % restart_steps) / restart_steps
    else:
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base_lr - min_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def parameter_groups(parameters: list[torch.nn.Parameter], weight_decay: float) -> list[dict]:
    """Decay matrices (weights of linear, conv, embedding layers), never biases or norm scales (1-D)."""
    decay = [p for p in parameters if p.dim() >= 2]
    no_decay = [p for p in parameters if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def build_optimizer(
    parameters: list[torch.nn.Parameter], settings: EngineSettings, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW (fused kernels where this torch has them for the device) or bitsandbytes' 8-bit AdamW (CUDA only)."""
    if not parameters:
        raise ValueError("the model has no trainable parameters")
    groups = parameter_groups(parameters, settings.weight_decay)
    if settings.optimizer == "adamw-8bit":
        if device.type != "cuda":
            raise NotAvailableError(
                "optimizer adamw-8bit needs a CUDA GPU and bitsandbytes (pip install 'lexiedge[gpu]'); "
                "this run is on the CPU: set train.optimizer: adamw"
            )
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise NotAvailableError(
                "optimizer adamw-8bit needs bitsandbytes, which is not installed: pip install 'lexiedge[gpu]'"
            ) from None
        return bnb.optim.AdamW8bit(groups, lr=settings.lr)
    try:
        return torch.optim.AdamW(groups, lr=settings.lr, fused=True)
    except (RuntimeError, TypeError):  # no fused kernel for this device/dtype in this torch
        return torch.optim.AdamW(groups, lr=settings.lr, foreach=device.type == "cuda")
