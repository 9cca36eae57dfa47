"""Where training stands, and its round trip through ``trainer_state.pt``.

Everything here is plain data (numbers, strings, lists, dicts, tensors), so the file loads with
``torch.load(weights_only=True)``: a checkpoint can never run code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lexiedge.train.batching import steps_per_epoch, train_drop_last
from lexiedge.train.device import rng_state, set_rng_state
from lexiedge.train.optim import Schedule
from lexiedge.train.run_files import plain
from lexiedge.train.settings import EngineSettings

STATE_FORMAT = 1


@dataclass
class Meter:
    """Train loss and throughput since the last evaluation (the loss part survives a resume)."""

    loss_sum: float = 0.0
    steps: int = 0
    samples: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, loss: float, samples: int) -> None:
        self.loss_sum += loss
        self.steps += 1
        self.samples += samples

    @property
    def loss(self) -> float:
        return self.loss_sum / self.steps if self.steps else float("nan")

    @property
    def samples_per_s(self) -> float:
        return self.samples / max(time.perf_counter() - self.started, 1e-9)


@dataclass
class TrainState:
    """With the weights and the optimizer, all a resumed run needs."""

    micro_batch: int
    grad_accum: int
    step: int = 0  # optimizer steps done
    epoch: int = 0  # the epoch in progress (0-based); == epochs once training is over
    position: int = 0  # samples of this rank's shard consumed in the current epoch
    best_value: float | None = None
    best_step: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    log_lines: int = 0  # lines of metrics.jsonl that belong to this state
    last_eval_step: int = -1
    last_checkpoint_step: int = -1
    meter: Meter = field(default_factory=Meter)
    learning_checked: bool = False  # the learns-nothing check ran (once per run, resumes included)
    # the task's train-metric gathering since the last evaluation (TrainTask.train_metrics_state)
    train_metrics: dict[str, Any] = field(default_factory=dict)


def trainer_state_dict(
    state: TrainState,
    *,
    optimizer_state: dict,
    scaler_state: dict,
    schedule: Schedule,
    best_metric: tuple[str, str],
    data_seed: int,
    world_size: int,
    weight_average: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of ``trainer_state.pt``."""
    name, mode = best_metric
    return {
        "format": STATE_FORMAT,
        "weight_average": weight_average,
        "optimizer": optimizer_state,
        "scaler": scaler_state,
        "schedule": schedule.as_dict(),
        "rng": rng_state(),
        "step": state.step,
        "epoch": state.epoch,
        "position": state.position,
        "data_seed": data_seed,
        "micro_batch": state.micro_batch,
        "grad_accum": state.grad_accum,
        "world_size": world_size,
        "best": {"metric": name, "mode": mode, "value": state.best_value, "step": state.best_step},
        "history": plain(state.history),
        "log_lines": state.log_lines,
        "last_eval_step": state.last_eval_step,
        "meter": {"loss_sum": state.meter.loss_sum, "steps": state.meter.steps},
        "learning_checked": state.learning_checked,
        "train_metrics": state.train_metrics,
    }


def restore_train_state(saved: dict[str, Any]) -> tuple[TrainState, Schedule]:
    """The state and schedule of a checkpoint; also puts every RNG back where it was."""
    set_rng_state(saved["rng"])
    schedule = Schedule(**{key: value for key, value in saved["schedule"].items() if key != "kind"})
    state = TrainState(
        micro_batch=saved["micro_batch"],
        grad_accum=saved["grad_accum"],
        step=saved["step"],
        epoch=saved["epoch"],
        position=saved["position"],
        best_value=saved["best"]["value"],
        best_step=saved["best"]["step"],
        history=list(saved["history"]),
        log_lines=saved["log_lines"],
        last_eval_step=saved["last_eval_step"],
        last_checkpoint_step=saved["step"],
        meter=Meter(loss_sum=saved["meter"]["loss_sum"], steps=saved["meter"]["steps"]),
        learning_checked=bool(saved.get("learning_checked", False)),  # absent from older checkpoints
        train_metrics=dict(saved.get("train_metrics") or {}),
    )
    return state, schedule


def planned_schedule(settings: EngineSettings, samples_per_rank: int, micro_batch: int, grad_accum: int,
                     keep_ragged: bool = False) -> Schedule:
    """The learning-rate schedule of ``settings.epochs`` epochs (capped at ``max_steps``) at this batch layout.

    A resumed run rebuilds it from its settings too, so the same settings give the same schedule
    (a resume is bit-identical) and more epochs give the longer one: the cosine is then laid over
    the new total, as if the run had been planned that long (what Hugging Face's Trainer does).
    """
    drop_last = train_drop_last(samples_per_rank, micro_batch, keep_ragged)
    per_epoch = steps_per_epoch(samples_per_rank, micro_batch, grad_accum, drop_last)
    total = per_epoch * settings.epochs if settings.max_steps is None else min(settings.max_steps, per_epoch * settings.epochs)
    return Schedule.from_settings(settings, total, per_epoch)
