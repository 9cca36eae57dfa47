"""Entry-point module of the `chat-jsonl` dataset plugin (``[project.entry-points.lexiedge]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lexiedge.plugin import hookimpl

if TYPE_CHECKING:
    import typer

    from lexiedge.api import DatasetPlugin
    from lexiedge.registry import Registry


@hookimpl
def lexiedge_add_datasets(registry: Registry[DatasetPlugin]) -> None:
    from lexiedge_chat_jsonl.dataset import ChatJsonlDataset

    registry.add(ChatJsonlDataset)


@hookimpl
def lexiedge_add_evaluators(registry) -> None:
    from lexiedge_chat_jsonl.evaluate import TutorJflegEvaluator

    registry.add(TutorJflegEvaluator)


@hookimpl
def lexiedge_add_data_commands(app: typer.Typer) -> None:
    from lexiedge_chat_jsonl.commands import add_commands

    add_commands(app)
