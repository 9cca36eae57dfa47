"""Settings of the `classifier` trainer: the shared engine's plus what cross-entropy needs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lexiedge.train.settings import EngineSettings


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
