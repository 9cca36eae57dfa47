"""Entry point of the `classifier` trainer plugin (``[project.entry-points.lexiedge] classifier``)."""

from __future__ import annotations

from lexiedge.plugin import hookimpl
from lexiedge_classifier.evaluate import ClassificationEvaluator
from lexiedge_classifier.trainer import ClassifierTrainer


@hookimpl
def lexiedge_add_trainers(registry) -> None:
    registry.add(ClassifierTrainer)


@hookimpl
def lexiedge_add_evaluators(registry) -> None:
    registry.add(ClassificationEvaluator)
