"""Settings of the `classifier` trainer: the shared engine's plus what cross-entropy needs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lexiedge.train.settings import EngineSettings
from lexiedge.values import PluginSettings


class DistillSettings(PluginSettings):
    """Teachers whose averaged soft predictions the student learns (Hinton et al., 2015), on the very batch
    the student sees, mixup included: the consistent teaching of Beyer et al. (2022), "a good teacher is
    patient and consistent"."""

    teachers: list[str] = Field(
        ...,
        min_length=1,
        description=(
            "run folders of the same task (their best or final weights), or, under `lexiedge eval --folds`, "
            "the folder of a cross-validation with the same folds: each fold then learns from that "
            "cross-validation's runs of the same fold, which never heard its test speakers"
        ),
    )
    weight: float = Field(
        0.5, gt=0.0, le=1.0, description="share of the loss that is the teachers' (1 - weight: the labels')"
    )
    temperature: float = Field(
        2.0, gt=0.0, description="softmax temperature of teachers and student in the distillation term"
    )


class ClassifierSettings(EngineSettings):
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="share of each target spread over all classes (0 = hard labels)"
    )
    mixup: float = Field(
        0.0,
        ge=0.0,
        description=(
            "mixup's Beta(alpha, alpha): each training batch is blended with a shuffled copy of itself (inputs and "
            "targets, one weight per batch); 0 = off. 0.2-0.4 is usual for small speech sets"
        ),
    )
    class_weights: Literal["none", "balanced"] = Field(
        "none",
        description="balanced: cross-entropy weights n / (classes x n_class) from the training split's labels",
    )
    distill: DistillSettings | None = Field(
        None,
        description=(
            "knowledge distillation: the student also learns the mean class probabilities of teacher runs "
            "(e.g. a seed ensemble) on the same augmented batches; null: off"
        ),
    )
