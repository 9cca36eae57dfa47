"""Entry point of the causal-lm-lora trainer plugin (``[project.entry-points.lexiedge] causal-lm-lora``)."""

from __future__ import annotations

from lexiedge.plugin import hookimpl
from lexiedge_causal_lm.trainer import CausalLMTrainer


@hookimpl
def lexiedge_add_trainers(registry) -> None:
    registry.add(CausalLMTrainer)
