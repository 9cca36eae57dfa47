"""Settings every trainer shares: the `models.<name>.train` section of a profile.

Trainer plugins subclass :class:`EngineSettings` to add their own keys; the profile loader
validates the section against the trainer's class, so a misspelt key fails when the profile loads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lexiedge.api import PluginSettings
from lexiedge.train.trackers import TrackerName


class EngineSettings(PluginSettings):
    """Optimisation, schedule, checkpointing and evaluation of the shared training engine."""

    batch_size: int | Literal["auto"] = Field(
        8, description="micro-batch per device and step; 'auto' lets `lexiedge plan` pick the largest that fits"
    )
    effective_batch: int | None = Field(
        None, ge=1, description="samples per optimizer step; with batch_size auto, grad_accum is derived from it"
    )
    grad_accum: int = Field(1, ge=1, description="micro-batches accumulated per optimizer step")
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps (short runs)")
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="share of optimizer steps spent warming up")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="cosine floor as a share of lr")
    restart_epochs: int | None = Field(
        None,
        ge=1,
        description=(
            "cosine with warm restarts (SGDR, Loshchilov & Hutter 2017): after warmup the rate falls from lr "
            "to the floor over this many epochs, then starts again at lr; null: one cosine over the whole run"
        ),
    )
    grad_clip: float | None = Field(1.0, gt=0, description="max global gradient norm; null disables clipping")
    optimizer: Literal["adamw", "adamw-8bit"] = Field(
        "adamw", description="adamw-8bit needs bitsandbytes and CUDA (the `gpu` extra)"
    )
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="auto follows device.precision; CPU always trains in fp32"
    )
    seed: int = 0
    compile: bool = Field(
        False,
        description=(
            "torch.compile the model's training forward (the decoder, for causal-LM LoRA) in place: faster "
            "steps after minutes of compiling in the first steps (Qwen2.5-0.5B on 2 CPU cores: 1.05-1.15x "
            "tokens/s, a third less peak memory); evaluation runs eagerly; on the CPU it needs a C++ compiler"
        ),
    )
    ema_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "keep an exponential moving average of the trainable weights (e.g. 0.999: about the last 1,000 "
            "steps) and evaluate, keep as best, save as final and export it; null: the trained weights"
        ),
    )
    checkpoint_every: int | None = Field(
        None, ge=1, description="optimizer steps between checkpoints; null = at the end of every epoch"
    )
    keep_last: int = Field(2, ge=1, description="periodic checkpoints kept (the best one is kept apart)")
    eval_every: int | None = Field(None, ge=1, description="optimizer steps between evaluations; null = every epoch")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    learning_check: float | None = Field(
        0.3,
        gt=0,
        le=1,
        description=(
            "share of the epochs after which a best validation score still within learning_margin of chance "
            "prints a warning and is recorded in run.json (learning_check); null: no check"
        ),
    )
    learning_margin: float = Field(
        0.05, ge=0, description="how close to chance (in the best metric's units) counts as learning nothing"
    )
    trackers: list[TrackerName] = Field(
        default_factory=lambda: ["tensorboard"],
        description=(
            "where metrics.jsonl's numbers also go: tensorboard (events in RUN/tb/, when the tensorboard "
            "package is installed: pip install 'lexiedge[tensorboard]'), mlflow (pip install "
            "'lexiedge[mlflow]'); e.g. [tensorboard, mlflow], or [] for none"
        ),
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow store or server; null: MLFLOW_TRACKING_URI if set, else a store in RUN/mlruns"
    )
    mlflow_experiment: str | None = Field(
        None, description="MLflow experiment; null: MLFLOW_EXPERIMENT_NAME if set, else PROFILE/MODEL"
    )

    @field_validator("trackers", mode="before")
    @classmethod
    def _one_tracker_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value  # --set ...trackers=mlflow

    @field_validator("trackers")
    @classmethod
    def _each_tracker_once(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _auto_needs_target(self) -> EngineSettings:
        if self.batch_size == "auto" and self.effective_batch is None:
            raise ValueError("batch_size 'auto' needs effective_batch (samples per optimizer step) to keep")
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer or 'auto', got {self.batch_size}")
        return self
