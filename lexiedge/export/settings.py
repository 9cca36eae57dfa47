"""The verification settings every exporter shares (``models.<name>.export.options.<target>``): how many
inputs verification runs. A target's settings class subclasses :class:`VerifySettings` and adds its own
fields and thresholds (defaults: the task specs' ``THRESHOLDS``)."""

from __future__ import annotations

from pydantic import Field

from lexiedge.values import PluginSettings
from lexiedge_runtime.tasks.av_classification import THRESHOLDS as AV


class VerifySettings(PluginSettings):
    """How many inputs verification runs (fields shared by every target)."""

    max_val_clips: int = Field(256, ge=1, description="classifier: validation clips compared (the first N)")
    min_decisive_share: float = Field(
        AV["fp32"].min_decisive_share,
        ge=0,
        le=1,
        description=(
            "share of the validation clips (LLM: greedy steps) whose PyTorch top-2 margin must exceed twice "
            "the export's logit noise; fewer means the export's noise is as large as the model's decisions "
            "(a trained classifier's int8 export has ~90%, a lightly trained tiny LLM's int4 ~40%, a broken "
            "graph ~0-5%)"
        ),
    )
