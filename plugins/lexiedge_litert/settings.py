"""Settings of the LiteRT targets: ``models.<name>.export.options.litert`` / ``litert-int8``.

Thresholds default to the task spec's (``THRESHOLDS`` of :mod:`lexiedge_runtime.tasks.av_classification`).
"""

from __future__ import annotations

from pydantic import Field

from lexiedge.export.settings import VerifySettings
from lexiedge_runtime.tasks.av_classification import THRESHOLDS as AV


class LitertSettings(VerifySettings):
    """`litert`: fp32 flatbuffer, static shapes (batch 1, the training clip's samples and frames)."""

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
    convert_timeout_s: int = Field(
        3600, ge=60, description="the converter's child process is stopped after this"
    )


class LitertInt8Settings(LitertSettings):
    """`litert-int8`: dynamic-range int8 (int8 weights per channel, activations quantized at run time) on the
    fully-connected and convolution ops only; LiteRT's default int8 recipe also quantizes the log-mel
    BATCH_MATMUL, which then fails at run time. The ``keep_float`` modules' ops stay fp32."""

    keep_float: list[str] = Field(
        default_factory=lambda: ["audio.frontend", "audio.subsampling"],
        description=(
            "module paths whose ops stay fp32 (emotion-av: the STFT/log-mel front end, whose DFT basis is a "
            "convolution weight, and the audio subsampling right after it, as onnx-int8 keeps them); a path "
            "that names no module is refused"
        ),
    )

    atol: float | None = Field(  # type: ignore[assignment]
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
