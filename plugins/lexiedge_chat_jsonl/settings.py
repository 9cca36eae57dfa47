"""Settings of the `chat-jsonl` dataset plugin: the `models.<name>.data` section of a profile.

The sequence length is not here: it belongs to the model (``models.<name>.model.seq_len``), because
the model's memory plan and its export depend on it.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from lexiedge.api import PluginSettings


class ChatJsonlSettings(PluginSettings):
    """Chat-format JSONL (``messages`` or ``instruction``/``output`` lines) for causal-LM fine-tuning."""

    packing: bool = Field(
        True,
        description="pack several whole examples into each seq_len row (no compute on padding); "
        "false pads each example to the longest in its batch",
    )
    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of examples held out for validation")
    test_fraction: float = Field(0.0, ge=0, lt=1, description="share of examples held out for testing")
    seed: int = Field(0, description="seed of the shuffle that makes the splits (and the packing order)")
    system_prompt: str | None = Field(
        None,
        description="prepended to conversations without a system turn (None: the chat template's default)",
    )
    max_examples: int | None = Field(None, ge=1, description="use at most this many examples (quick runs)")
    max_line_bytes: int = Field(
        1 << 20,
        ge=1024,
        description="longest JSONL line read (bytes); a longer one is reported by number and skipped unread",
    )
    truncate: bool = Field(
        True,
        description="cut examples longer than seq_len (counted in the summary); false drops them instead",
    )

    @model_validator(mode="after")
    def _held_out_leaves_training_data(self) -> ChatJsonlSettings:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must be below 1 "
                f"(got {self.val_fraction} + {self.test_fraction})"
            )
        return self
