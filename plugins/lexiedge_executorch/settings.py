"""Settings of the ExecuTorch targets: ``models.<name>.export.options.executorch``.

Thresholds default to the task spec's (``THRESHOLDS`` of :mod:`lexiedge_runtime.tasks.av_classification`,
fp32: the program must match PyTorch as the ONNX graph does).
"""

from __future__ import annotations

from typing import Literal

from lexiedge_runtime.tasks.causal_lm import THRESHOLDS as LM
from pydantic import Field

from lexiedge.export.settings import ClassifierFp32Settings, ClassifierInt8Settings, VerifySettings


class ExecutorchSettings(ClassifierFp32Settings):
    """`executorch`: fp32 program, every op XNNPACK takes delegated to it; batch 1, samples and frames
    dynamic."""


class ExecutorchInt8Settings(ClassifierInt8Settings):
    """`executorch-int8`: PT2E static int8 of the Linear/Conv modules, XNNPACK-delegated; the log-mel front
    end (functional ops, never quantized) and the ``keep_float`` modules stay fp32."""

    calibration_clips: int = Field(
        32, ge=1, description="training clips the activation ranges are measured on"
    )
    activation_observer: Literal["minmax", "histogram"] = Field(
        "minmax",
        description=(
            "how calibration measures each activation's int8 range: minmax (the range seen, as ONNX Runtime's "
            "static int8 does) or histogram (the range that minimises the quantisation error over a histogram "
            "of the values, XNNPACK's default)"
        ),
    )
    keep_float: list[str] = Field(
        default_factory=lambda: ["audio.subsampling"],
        description=(
            "module paths whose Linear/Conv layers stay fp32 (emotion-av: the audio subsampling right after "
            "the log-mel features); a path that names no module is refused"
        ),
    )


class ExecutorchInt4Settings(VerifySettings):
    """`executorch-int4` (causal LM): ExecuTorch's LLM recipe, q8da4w (int4 weights in groups, int8 dynamic
    activations) through XNNPACK, the KV cache inside the program."""

    group_size: Literal[32, 64, 128, 256] = Field(
        32, description="weights per int4 scale (smaller: more accurate)"
    )
    embedding_bits: Literal[4, 8] | None = Field(
        8,
        description=(
            "the token embeddings' weights, per channel (4 or 8 bits; null keeps them fp32). The LM head "
            "is a linear layer of its own in the program and is q8da4w like the others"
        ),
    )
    max_context: int = Field(
        2048,
        ge=16,
        description="tokens the program's KV cache holds (prompt and reply; capped at the model's)",
    )
    prompts: int = Field(4, ge=1, le=8, description="built-in tutor prompts of different lengths compared")
    new_tokens: int = Field(24, ge=1, description="greedy tokens generated per prompt and compared")
    min_token_agreement: float = Field(
        LM["int4"].min_token_agreement, ge=0, le=1,
        description="next-token agreement with fp32 PyTorch on the decisive greedy steps",
    )
