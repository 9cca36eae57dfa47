"""Settings of the `classifier` trainer: the shared engine's plus what cross-entropy needs."""

from __future__ import annotations

from pydantic import Field

from lexiedge.train.settings import EngineSettings


class ClassifierSettings(EngineSettings):
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="share of each target spread over all classes (0 = hard labels)"
    )
