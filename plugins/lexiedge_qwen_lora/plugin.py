"""Entry point of the qwen-lora model plugin (``[project.entry-points.lexiedge] qwen-lora``)."""

from __future__ import annotations

from lexiedge.plugin import hookimpl
from lexiedge_qwen_lora.model import QwenLoraPlugin


@hookimpl
def lexiedge_add_models(registry) -> None:
    registry.add(QwenLoraPlugin)
