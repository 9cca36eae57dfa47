"""Settings of the ExecuTorch targets: ``models.<name>.export.options.executorch``.

Thresholds default to the task spec's (``THRESHOLDS`` of :mod:`lexiedge_runtime.tasks.av_classification`,
fp32: the program must match PyTorch as the ONNX graph does).
"""

from __future__ import annotations

from pydantic import Field

from lexiedge.export.settings import VerifySettings
from lexiedge_runtime.tasks.av_classification import THRESHOLDS as AV


class ExecutorchSettings(VerifySettings):
    """`executorch`: fp32 program, every op XNNPACK takes delegated to it; batch 1, samples and frames
    dynamic."""

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
