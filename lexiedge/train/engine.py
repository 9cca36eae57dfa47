"""The training loop every trainer plugin shares.

Read :meth:`Engine.run` top to bottom: set up, maybe resume, then epochs of optimizer steps (each
accumulating ``grad_accum`` micro-batches), evaluating and checkpointing as the settings say, then
the final weights, the test split on the best weights, and the task's own report. Everything
task-specific goes through :class:`~lexiedge.train.task.TrainTask`; everything about where state
lives on disk through :mod:`~lexiedge.train.checkpoint` and :mod:`~lexiedge.train.run_files` (the layout: :mod:`lexiedge.rundir`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

import lexiedge
from lexiedge.api import BuiltModel, DataSplits, StopTraining, TrainJob, TrainResult
from lexiedge.errors import LexiedgeError
from lexiedge.train import checkpoint as ckpt
from lexiedge.train.batching import (
    DeviceBatches,
    EpochSampler,
    batch_length,
    eval_loader,
    resolve_batch,
    shrink_after_oom,
    to_device,
    train_drop_last,
    train_loader,
)
from lexiedge.train.compiling import compile_in_place, evaluation_stance
from lexiedge.train.device import (
    autocast,
    deterministic_algorithms,
    make_grad_scaler,
    peak_memory_mb,
    reset_peak_memory,
    resolve_precision,
    seed_everything,
    select_device,
)
from lexiedge.train.ema import WeightAverage
from lexiedge.train.distributed import barrier, dist_info_from_env, init_distributed, mean_across_ranks, shutdown_distributed
from lexiedge.train.optim import Schedule, build_optimizer, set_lr
from lexiedge.train.progress import TrainProgress, eval_line
from lexiedge.rundir import CHECKPOINTS_DIR, FINAL_DIR, TEST_METRICS_JSON, checkpoints_dir
from lexiedge.train.run_files import MLflowTarget, RunFiles, plain, scalars
from lexiedge.train.settings import EngineSettings
from lexiedge.train.state import Meter, TrainState, planned_schedule, restore_train_state, trainer_state_dict
from lexiedge.train.task import TrainTask, is_better
from lexiedge.train.trackers import check_trackers

def forward_backward(
    task: TrainTask, built: BuiltModel, micro_batches: list[Any], device: torch.device, precision: str, scaler=None
) -> float:
    """Accumulate the gradients of one optimizer step; returns the step's mean loss.

    Each micro-batch's loss is divided by their count, so the summed gradients are those of the mean
    over the step (batch 4 x accum 1 == batch 2 x accum 2). Under DDP only the last backward
    all-reduces (``no_sync``); the others would only repeat the communication.
    """
    module = built.module
    total = 0.0
    for index, batch in enumerate(micro_batches):
        last = index == len(micro_batches) - 1
        sync = contextlib.nullcontext() if last or not isinstance(module, DistributedDataParallel) else module.no_sync()
        with sync:
            with autocast(device, precision):
                loss = task.loss(built, to_device(batch, device)) / len(micro_batches)
            (scaler.scale(loss) if scaler is not None else loss).backward()
        total += float(loss.detach())
    return total


@dataclasses.dataclass
class _Loop:
    """What the training loop steps: the model as trained (DDP-wrapped under torchrun), its trainable
    parameters, optimizer, grad scaler (fp16 only) and the sampler of the training split."""

    built: BuiltModel
    parameters: list[Any]
    optimizer: torch.optim.Optimizer
    scaler: Any
    sampler: EpochSampler


class Engine:
    def __init__(self, job: TrainJob, settings: EngineSettings, built: BuiltModel, splits: DataSplits, task: TrainTask) -> None:
        self.job, self.settings, self.built, self.splits, self.task = job, settings, built, splits, task
        spec = job.profile.device
        self._owns_process_group = not torch.distributed.is_initialized()
        self.dist = init_distributed(spec.kind == "cuda" and torch.cuda.is_available())
        self.console = job.console if self.dist.is_main else Console(quiet=True)
        self.device = select_device(spec, self.dist.local_rank, self.console)
        self.precision = resolve_precision(settings.precision, spec, self.device, self.console)
        self.files = RunFiles(job.run_dir, enabled=self.dist.is_main)
        self.checkpoints = checkpoints_dir(job.run_dir)
        self.average: WeightAverage | None = None  # train.ema_decay (see lexiedge.train.ema)

    # --- the loop ------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        try:
            with deterministic_algorithms(self.device):
                return self._run()
        except StopTraining as exc:  # asked for by job.on_evaluate (a search pruning a trial)
            if self.files.info:
                self.files.finish("stopped", reason=str(exc))
            raise
        except BaseException as exc:
            if self.files.info:
                self.files.finish("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if self._owns_process_group and dist_info_from_env().distributed:
                shutdown_distributed()

    def _run(self) -> TrainResult:
        # training_runs.train checked the trackers before loading; this is for engines run without it
        check_trackers(self.settings.trackers)
        seed_everything(self.settings.seed)
        loop = self._set_up()
        state, resumed_from = self._start_state(loop)
        # from the settings on a resume too: more epochs (or an allowed change of lr) move the schedule
        schedule = planned_schedule(self.settings, loop.sampler.num_samples, state.micro_batch,
                                    state.grad_accum, self.task.keeps_ragged_batch)
        self._open_run_files(state, schedule, resumed_from)
        # the first window's samples/s counts training from here, not the setup above (mlflow imports slowly)
        state.meter.started = time.perf_counter()
        loop.built = self._distributed(loop.built)
        self.console.print(
            f"training on {self.device} ({self.precision}, world size {self.dist.world_size}): "
            f"micro-batch {state.micro_batch} x grad_accum {state.grad_accum}, {schedule.total_steps} steps"
            + (f", resumed from {resumed_from.name}" if resumed_from else "")
        )
        with TrainProgress(self.console, self.dist.is_main, schedule.total_steps, state.step,
                           self.job.model_key) as progress:
            self.progress = progress
            self._train_epochs(loop, state, schedule)
            self._close_last_window(loop, state, schedule)
        return self._finish(state)

    # --- setting up ------------------------------------------------------------------------------------

    def _set_up(self) -> _Loop:
        """The model on its device, what the optimizer trains, and the sampler of the training split (the
        model is wrapped for DDP later, once the state it starts from is loaded)."""
        s = self.settings
        self.built.module.to(self.device).train()
        if s.compile:
            compile_in_place(self.task.compile_targets(self.built), self.device, self.console)
        parameters = self.task.trainable_parameters(self.built)
        optimizer = build_optimizer(parameters, s, self.device)
        scaler = make_grad_scaler(self.device, self.precision)
        sampler = EpochSampler(self.splits.train, world_size=self.dist.world_size, rank=self.dist.rank, seed=s.seed)
        if s.ema_decay is not None:
            self.average = WeightAverage(parameters, s.ema_decay)
        return _Loop(self.built, parameters, optimizer, scaler, sampler)

    def _distributed(self, built: BuiltModel) -> BuiltModel:
        """Under torchrun the task's loss runs through DistributedDataParallel (gradient all-reduce)."""
        if not self.dist.distributed:
            return built
        ids = [self.device.index] if self.device.type == "cuda" else None
        return dataclasses.replace(built, module=DistributedDataParallel(built.module, device_ids=ids))

    def _start_state(self, loop: _Loop) -> tuple[TrainState, Path | None]:
        """The state to train from: a resumed checkpoint's (and its path), else step 0 at the planned batch
        size."""
        resumed = self._find_resume_checkpoint()
        if resumed is not None:
            return self._restore(*resumed, loop.optimizer, loop.scaler), resumed[0]
        micro, accum = resolve_batch(self.settings, self.dist.world_size, self._planned_micro_batch)
        return TrainState(micro_batch=micro, grad_accum=accum), None

    def _open_run_files(self, state: TrainState, schedule: Schedule, resumed_from: Path | None) -> None:
        """run.json, the model's fit to the data (a fresh run only), the log cut back to the checkpoint, the
        trackers."""
        fitted = None if resumed_from is not None else self.job.model_plugin.fit_to_data(self.built, self.splits, self.console)
        self.files.start(self._run_info(state, schedule), resumed=self.job.resume)
        if fitted is not None:
            self.files.update(fitted_to_data=plain(fitted))
        self.files.truncate_log(state.log_lines)
        hints = self.files.open_trackers(
            self.settings.trackers, purge_after_step=state.step if resumed_from is not None else None,
            mlflow=self._mlflow_target(),
        )
        for hint in hints:
            self.console.print(hint, soft_wrap=True, markup=False, highlight=False)

    # --- epochs and steps ----------------------------------------------------------------------------

    def _train_epochs(self, loop: _Loop, state: TrainState, schedule: Schedule) -> None:
        """Epochs until ``epochs`` or ``max_steps``; each ends with its evaluation and checkpoint unless the
        settings ask for them every N steps."""
        s = self.settings
        while state.epoch < s.epochs and state.step < schedule.total_steps:
            if not self._train_epoch(loop, state, schedule):
                return  # max_steps reached mid-epoch
            state.epoch, state.position = state.epoch + 1, 0
            if s.eval_every is None:
                self._evaluate(state, loop.sampler, schedule.lr_at(max(state.step - 1, 0)))
            if s.checkpoint_every is None:
                self._checkpoint(state, loop.optimizer, loop.scaler, schedule)

    def _train_epoch(self, loop: _Loop, state: TrainState, schedule: Schedule) -> bool:
        """Optimizer steps from ``state.position`` to the end of the epoch (or ``max_steps``); True when the
        epoch ran out. A CUDA out-of-memory step is retried with half the micro-batch."""
        sampler = loop.sampler
        sampler.start_epoch(state.epoch, state.position)
        batches = iter(self._train_loader(sampler, state))
        reset_peak_memory(self.device)
        while not self._epoch_exhausted(sampler, state) and state.step < schedule.total_steps:
            micro_batches = [batch for _, batch in zip(range(state.grad_accum), batches)]
            lr = schedule.lr_at(state.step)
            try:
                loss = self._optimizer_step(loop.built, micro_batches, loop.parameters, loop.optimizer,
                                            loop.scaler, lr)
            except torch.cuda.OutOfMemoryError:
                loss = None  # handled below, outside the except block that pins the failed tensors
            if loss is None:
                self._shrink_after_oom(loop.optimizer, state)
                sampler.start_epoch(state.epoch, state.position)
                batches = iter(self._train_loader(sampler, state))
                continue
            self._after_step(loop, state, schedule, micro_batches, loss, lr)
        return self._epoch_exhausted(sampler, state)

    def _after_step(self, loop: _Loop, state: TrainState, schedule: Schedule, micro_batches: list[Any],
                    loss: float, lr: float) -> None:
        """Count the step, show and log it, then evaluate and checkpoint when the settings' N steps came
        round."""
        s = self.settings
        samples = sum(batch_length(batch) for batch in micro_batches)
        state.step += 1
        state.position += samples
        state.meter.add(loss, samples * self.dist.world_size)
        self.progress.update(state.step, state.meter.samples_per_s, loss)
        epoch = self._epoch_float(loop.sampler, state)
        self._log({"step": state.step, "epoch": epoch, "lr": lr, "train/loss": loss})
        if s.eval_every and state.step % s.eval_every == 0:
            self._evaluate(state, loop.sampler, lr)
        if s.checkpoint_every and state.step % s.checkpoint_every == 0:
            self._checkpoint(state, loop.optimizer, loop.scaler, schedule)

    def _close_last_window(self, loop: _Loop, state: TrainState, schedule: Schedule) -> None:
        """Evaluate and checkpoint the last steps if no epoch end or N-step mark did: a finished run's last
        checkpoint is its last step, so ``--resume`` of it has nothing left to do."""
        if state.last_eval_step != state.step:
            self._evaluate(state, loop.sampler, schedule.lr_at(max(state.step - 1, 0)))
        if state.last_checkpoint_step != state.step:
            self._checkpoint(state, loop.optimizer, loop.scaler, schedule)

    # --- one optimizer step ------------------------------------------------------------------------

    def _optimizer_step(self, built, micro_batches, parameters, optimizer, scaler, lr: float) -> float:
        set_lr(optimizer, lr)
        loss = forward_backward(self.task, built, micro_batches, self.device, self.precision, scaler)
        if not math.isfinite(loss) and scaler is None:  # with fp16 the scaler skips such steps itself
            raise LexiedgeError(f"the training loss became {loss} at lr {lr:.3g}: training diverged; lower train.lr")
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        if self.settings.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(parameters, self.settings.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if self.average is not None:
            self.average.update()
        return loss

    def _shrink_after_oom(self, optimizer: torch.optim.Optimizer, state: TrainState) -> None:
        """Drop the failed step's gradients, free the cache, halve the micro-batch, accumulate twice as much."""
        if self.dist.distributed:
            raise LexiedgeError(
                "CUDA out of memory under torchrun: the ranks cannot shrink their batches in step; "
                f"lower train.batch_size (now {state.micro_batch}) and raise train.grad_accum"
            )
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        old = state.micro_batch
        state.micro_batch, state.grad_accum = shrink_after_oom(state.micro_batch, state.grad_accum)
        self.progress.print(
            f"[yellow]CUDA out of memory at micro-batch {old}:[/] retrying step {state.step + 1} with "
            f"micro-batch {state.micro_batch} x grad_accum {state.grad_accum}"
        )

    # --- evaluation, checkpoints, logs -------------------------------------------------------------

    def _evaluate(self, state: TrainState, sampler: EpochSampler, lr: float) -> None:
        """One history row: the train window, then validation on rank 0 (the others wait); the best checkpoint."""
        row: dict[str, Any] = {
            "epoch": self._epoch_float(sampler, state),
            "step": state.step,
            "lr": lr,
            "train/loss": mean_across_ranks(state.meter.loss, self.device),
            "samples_per_s": state.meter.samples_per_s,
            "peak_memory_mb": peak_memory_mb(self.device),
        }
        row.update({f"train/{key}": value for key, value in self.task.train_metrics().items() if key != "loss"})
        with self._averaged_weights():
            if self.dist.is_main and self.splits.val is not None:
                val = self._evaluate_split(self.splits.val, "val", state)
                row.update({f"val/{key}": value for key, value in val.items()})
            barrier()
            row = plain(row)
            state.history.append(row)
            state.last_eval_step = state.step
            self.files.write_history(state.history)
            self._log({"event": "eval", **row})
            self._update_best(state, row)
        self.progress.print(eval_line(row))
        self._check_learning(state, row["epoch"])
        state.meter = Meter()
        if self.job.on_evaluate is not None and self.dist.is_main:
            self.job.on_evaluate(row)

    def _evaluate_split(self, dataset, split: str, state: TrainState) -> dict[str, Any]:
        module = self.built.module
        module.eval()
        pin = self.device.type == "cuda"
        loader = eval_loader(dataset, state.micro_batch, self.splits.collate, self.settings.num_workers, pin)
        try:
            with torch.no_grad(), autocast(self.device, self.precision), evaluation_stance(self.settings.compile):
                return self.task.evaluate(self.built, DeviceBatches(loader, self.device), split)
        finally:
            module.train()

    def _check_learning(self, state: TrainState, epoch: float) -> None:
        """Once ``learning_check`` of the epochs are done: say so if the best score is still about chance.

        A run that learns nothing (labels that do not match the inputs, a rate that diverges or
        stalls, features that hide the signal) otherwise runs to the end and looks like any other.
        """
        s = self.settings
        chance = self.task.chance_level()
        if (s.learning_check is None or chance is None or state.best_value is None or state.learning_checked
                or epoch < s.learning_check * s.epochs):
            return
        state.learning_checked = True
        name, mode = self.task.best_metric
        gain = state.best_value - chance if mode == "max" else chance - state.best_value
        learning = gain > s.learning_margin
        record = {"epoch": epoch, "step": state.step, "metric": name, "best": state.best_value, "chance": chance,
                  "margin": s.learning_margin, "learning": learning}
        self.files.update(learning_check=plain(record))
        self._log({"event": "learning_check", **record})
        if not learning:
            self.progress.print(
                f"[yellow]warning:[/] after {epoch:g} of {s.epochs} epochs the best {name} is {state.best_value:.3f}, "
                f"within {s.learning_margin:g} of chance ({chance:.3f}): the model is not learning; check that the "
                "labels match the inputs, the learning rate (train.lr) and the data's preprocessing"
            )

    def _update_best(self, state: TrainState, row: dict[str, Any]) -> None:
        name, mode = self.task.best_metric
        value = row.get(name)
        if not isinstance(value, (int, float)) or not is_better(float(value), state.best_value, mode):
            return
        state.best_value, state.best_step = float(value), state.step
        if self.dist.is_main:
            meta = {"step": state.step, "epoch": row["epoch"], "metric": name, "mode": mode, "value": value}
            ckpt.save_best(self.checkpoints, self.task.checkpoint_state(self.built), plain(meta))
            self.files.update(best={"metric": name, "value": value, "step": state.step, "checkpoint": "checkpoints/best"})

    def _checkpoint(self, state: TrainState, optimizer, scaler, schedule: Schedule) -> None:
        state.last_checkpoint_step = state.step
        state.log_lines = self.files.log_lines
        state.train_metrics = self.task.train_metrics_state()
        if self.dist.is_main:
            path = ckpt.save_checkpoint(
                self.checkpoints,
                state.step,
                self.task.checkpoint_state(self.built),
                trainer_state_dict(
                    state,
                    optimizer_state=optimizer.state_dict(),
                    scaler_state=scaler.state_dict() if scaler is not None else {},
                    schedule=schedule,
                    best_metric=self.task.best_metric,
                    data_seed=self.settings.seed,
                    world_size=self.dist.world_size,
                    weight_average=self.average.state_dict() if self.average is not None else None,
                ),
                plain({"step": state.step, "epoch": state.epoch, "position": state.position,
                       "lexiedge_version": lexiedge.__version__, "last_eval": state.history[-1] if state.history else None}),
            )
            ckpt.prune(self.checkpoints, self.settings.keep_last)
            self.files.update(step=state.step, epoch=state.epoch, last_checkpoint=f"{CHECKPOINTS_DIR}/{path.name}")
        barrier()

    def _log(self, record: dict[str, Any]) -> None:
        self.files.log(record)

    # --- resume --------------------------------------------------------------------------------------

    def _find_resume_checkpoint(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint whose files match their checksums, and its trainer state (damaged ones are
        skipped with a warning each)."""
        if not self.job.resume:
            return None
        if self.dist.is_main:
            ckpt.recover(self.checkpoints)
        barrier()
        found = ckpt.latest_intact_checkpoint(self.checkpoints, warn=self._warn)
        if found is None:
            self._warn(f"warning: no intact checkpoint in {self.checkpoints}; starting from step 0")
        return found

    def _warn(self, line: str) -> None:
        self.console.print(line, style="yellow", markup=False, highlight=False, soft_wrap=True)

    def _restore(self, path: Path, trainer_state: dict[str, Any], optimizer, scaler) -> TrainState:
        if trainer_state.get("world_size", 1) != self.dist.world_size:
            raise LexiedgeError(
                f"{path} was written by {trainer_state['world_size']} processes; resume it with the same "
                f"number (torchrun --nproc-per-node {trainer_state['world_size']}), not {self.dist.world_size}"
            )
        self.task.load_checkpoint_state(self.built, ckpt.load_weights(path / ckpt.WEIGHTS, self.device))
        optimizer.load_state_dict(trainer_state["optimizer"])
        if scaler is not None and trainer_state["scaler"]:
            scaler.load_state_dict(trainer_state["scaler"])
        state, _ = restore_train_state(trainer_state)  # the schedule is rebuilt from the settings
        self.task.load_train_metrics_state(state.train_metrics)  # the evaluation window goes on whole
        saved_average = trainer_state.get("weight_average")
        if self.average is not None and saved_average is not None:
            self.average.load_state_dict(saved_average)
        elif self.average is not None:  # train.ema_decay turned on for the rest of a run: average from here
            self._warn(f"warning: {path.name} has no weight average (train.ema_decay was off); averaging from step {state.step}")
        return state

    # --- the end -------------------------------------------------------------------------------------

    def _finish(self, state: TrainState) -> TrainResult:
        run_dir = self.job.run_dir
        result: dict[str, Any] = {"step": state.step, **(scalars(state.history[-1]) if state.history else {})}
        if self.dist.is_main:
            with self._averaged_weights():
                ckpt.save_final(run_dir / FINAL_DIR, self.task.checkpoint_state(self.built),
                                metadata={"format": "pt", "step": str(state.step)})
            used = "final"
            best_weights = ckpt.intact_best(self.checkpoints, warn=self._warn)
            if best_weights is not None:
                self.task.load_checkpoint_state(self.built, ckpt.load_weights(best_weights, self.device))
                used = "best"
            if self.splits.test is not None and self.job.evaluate_test:
                test = self._evaluate_split(self.splits.test, "test", state)
                step = state.best_step if used == "best" else state.step
                self.files.write_json(TEST_METRICS_JSON, {"split": "test", "checkpoint": used, "step": step, **plain(test)})
                result.update({f"test/{key}": value for key, value in scalars(test).items()})
            result.update(self.task.on_run_end(self.built, run_dir, self.splits, state.history) or {})
            self.files.finish(
                "completed",
                step=state.step,
                epoch=state.epoch,
                final=f"{FINAL_DIR}/{ckpt.WEIGHTS}",
                test_weights=used,
            )
        barrier()
        return TrainResult(run_dir=run_dir, metrics=plain(result))

    # --- small helpers -------------------------------------------------------------------------------

    def _averaged_weights(self):
        """The weight average in the model (train.ema_decay) for what is evaluated and kept; else nothing."""
        return self.average.applied() if self.average is not None else contextlib.nullcontext()

    def _train_loader(self, sampler: EpochSampler, state: TrainState):
        pin = self.device.type == "cuda"
        return train_loader(self.splits.train, sampler, state.micro_batch, self.splits.collate, self.settings, pin,
                            self.task.keeps_ragged_batch)

    def _epoch_exhausted(self, sampler: EpochSampler, state: TrainState) -> bool:
        """No micro-batch left in this epoch (a ragged last one is dropped unless the task keeps it, see
        train_drop_last)."""
        remaining = sampler.num_samples - state.position
        drop_last = train_drop_last(sampler.num_samples, state.micro_batch, self.task.keeps_ragged_batch)
        return remaining <= 0 or (drop_last and remaining < state.micro_batch)

    @staticmethod
    def _epoch_float(sampler: EpochSampler, state: TrainState) -> float:
        return state.epoch + state.position / max(sampler.num_samples, 1)

    def _planned_micro_batch(self) -> int:
        from lexiedge.plan import plan_profile

        return plan_profile(self.job.profile, self.job.model_key).micro_batch

    def _mlflow_target(self) -> MLflowTarget | None:
        """Where MLflow tracks this run, when train.trackers asks for it: store, experiment, name, settings."""
        if "mlflow" not in self.settings.trackers:
            return None
        from lexiedge.train import mlflow_tracking
        from lexiedge.train.resume import training_settings

        job, s = self.job, self.settings
        prefix = f"models.{job.model_key}."  # train.lr, model.hidden, device.kind: the names a profile uses
        settings = {key.removeprefix(prefix): value for key, value in training_settings(job.profile, job.model_key).items()}
        return MLflowTarget(
            tracking_uri=mlflow_tracking.tracking_uri(s.mlflow_tracking_uri, job.run_dir),
            experiment=mlflow_tracking.experiment_name(s.mlflow_experiment, job.profile.name, job.model_key),
            run_name=Path(job.run_dir).resolve().name,
            params=settings,
        )

    def _run_info(self, state: TrainState, schedule: Schedule) -> dict[str, Any]:
        entry = self.job.entry
        return {
            "model_key": self.job.model_key,
            "profile": self.job.profile.name,
            "plugins": {"model": entry.model.plugin, "data": entry.data.plugin, "train": entry.train.plugin},
            "lexiedge_version": lexiedge.__version__,
            "torch_version": torch.__version__,
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "precision": self.precision,
            "micro_batch": state.micro_batch,
            "grad_accum": state.grad_accum,
            "total_steps": schedule.total_steps,
            "step": state.step,
            "data_path": str(Path(self.job.data_path).resolve()) if self.job.data_path else None,  # export may run elsewhere
        }
