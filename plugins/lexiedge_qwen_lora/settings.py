"""Settings of the `qwen-lora` model plugin: the `models.<name>.model` section of a profile."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lexiedge.api import PluginSettings

QWEN_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoraSettings(PluginSettings):
    """The adapter: rank, scale (alpha / r), dropout and the Linear layers it wraps."""

    r: int = Field(16, ge=1, description="adapter rank; 8 is faster, 32 fits harder tasks")
    alpha: float = Field(32, gt=0, description="scale numerator: the update is scaled by alpha / r")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapter input")
    target_modules: list[str] = Field(
        default_factory=lambda: list(QWEN_LORA_TARGETS),
        min_length=1,
        description="module names (suffixes) to wrap; the default is every attention and MLP projection",
    )


class QwenLoraSettings(PluginSettings):
    """A Qwen2-family causal LM with a LoRA adapter."""

    base: str = Field(
        "Qwen/Qwen2.5-0.5B-Instruct",
        description=(
            "hub name (needs network or the HF cache), a local model directory, or a built-in random "
            "architecture: random:qwen2-tiny (CPU tests), random:qwen2.5-0.5b (planning, benchmarks), or "
            "tiny:qwen2-tutor (the tiny Qwen2 pretrained here on tutor chats: demos and the cpu profile)"
        ),
    )
    revision: str | None = Field(None, description="hub revision (branch, tag or commit) of a hub base")
    seq_len: int = Field(512, ge=16, description="tokens per training row; 512 covers 90%+ of the tutor data")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in backward: much less memory, ~30% slower steps"
    )
    load_in_4bit: bool = Field(False, description="QLoRA: NF4 base weights through bitsandbytes (CUDA only)")
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="base weight dtype; auto follows device.precision on CUDA and is fp32 on CPU"
    )
    attn_implementation: Literal["sdpa", "eager"] = Field("sdpa", description="attention kernel")

    @field_validator("base")
    @classmethod
    def _base_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("base must be a hub name, a local directory, random:<architecture> or tiny:qwen2-tutor")
        return value.strip()
