"""The verification settings every exporter shares (``models.<name>.export.options.<target>``): how many
inputs verification runs. A target's settings class subclasses :class:`VerifySettings` and adds its own
fields and thresholds (defaults: the task specs' ``THRESHOLDS``); a classifier program's exporter takes
its thresholds from :class:`ClassifierFp32Settings` or :class:`ClassifierInt8Settings`."""

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


class ClassifierFp32Settings(VerifySettings):
    """An fp32 classifier program against PyTorch: it must match as the ONNX graph does."""

    atol: float = Field(
        AV["fp32"].atol, gt=0, description="max |difference| of logits allowed against PyTorch"
    )
    min_top1: float = Field(
        AV["fp32"].min_top1,
        ge=0,
        le=1,
        description="top-1 agreement with PyTorch on the decisive validation clips",
    )
    max_uar_drop: float = Field(
        AV["fp32"].max_uar_drop, ge=0, le=1, description="validation UAR lost against PyTorch"
    )


class ClassifierInt8Settings(VerifySettings):
    """An int8 classifier program against fp32 PyTorch: agreement on the decisive clips, not logit equality."""

    atol: float | None = Field(
        AV["int8"].atol,
        gt=0,
        description="max |logit difference| against fp32 PyTorch (default: reported only)",
    )
    min_top1: float = Field(
        AV["int8"].min_top1,
        ge=0,
        le=1,
        description="top-1 agreement with fp32 PyTorch on the decisive validation clips (near-ties apart)",
    )
    max_uar_drop: float = Field(
        AV["int8"].max_uar_drop, ge=0, le=1, description="validation UAR lost against fp32 PyTorch"
    )
