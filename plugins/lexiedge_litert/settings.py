"""Settings of the LiteRT targets: ``models.<name>.export.options.litert`` / ``litert-int8``.

Thresholds default to the task spec's (``THRESHOLDS`` of :mod:`lexiedge_runtime.tasks.av_classification`).
"""

from __future__ import annotations

from pydantic import Field

from lexiedge.export.settings import ClassifierFp32Settings, ClassifierInt8Settings


class LitertSettings(ClassifierFp32Settings):
    """`litert`: fp32 flatbuffer, static shapes (batch 1, the training clip's samples and frames)."""

    convert_timeout_s: int = Field(
        3600, ge=60, description="the converter's child process is stopped after this"
    )


class LitertInt8Settings(ClassifierInt8Settings, LitertSettings):
    """`litert-int8`: dynamic-range int8 (int8 weights per channel, activations quantized at run time) on the
    fully-connected and convolution ops only; LiteRT's default int8 recipe also quantizes the log-mel
    BATCH_MATMUL, which then fails at run time. The ``keep_float`` modules' ops stay fp32."""

    keep_float: list[str] = Field(
        default_factory=lambda: ["audio.frontend"],
        description=(
            "module paths whose ops stay fp32 (emotion-av: the STFT/log-mel front end, whose DFT basis is a "
            "convolution weight; add audio.subsampling to keep the layers right after it fp32 too, as "
            "onnx-int8 does: 13% slower, one fewer near-tie flipped in docs/benchmarks.md); a path that names "
            "no module is refused"
        ),
    )
