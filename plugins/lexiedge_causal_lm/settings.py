"""Settings of the `causal-lm-lora` trainer: the shared engine's, with the seeds' checkpoint cadence."""

from __future__ import annotations

from pydantic import Field

from lexiedge.train.settings import EngineSettings


class CausalLMSettings(EngineSettings):
    """LoRA fine-tuning of a causal LM; checkpoints hold the adapter only, so keeping a few is cheap."""

    checkpoint_every: int | None = Field(
        150, ge=1, description="optimizer steps between checkpoints (seeds: 150); null = every epoch end"
    )
    keep_last: int = Field(2, ge=1, description="periodic checkpoints kept (seeds: the last 2-3); best kept apart")
