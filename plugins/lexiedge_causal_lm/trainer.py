"""The `causal-lm-lora` trainer: next-token loss on the assistant's tokens, through the shared engine.

Checkpoints hold the adapter only (peft's state dict: a few MB instead of the whole model). At the
end the adapter is also written in peft's own format, with the tokenizer, in ``final/adapter/``
(``PeftModel.from_pretrained(base, run/final/adapter)``), for `lexiedge merge` and for users.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lexiedge.api import BuiltModel, TrainerPlugin, TrainJob, TrainResult, TrainTask
from lexiedge_causal_lm.settings import CausalLMSettings
from lexiedge_runtime.tasks import causal_lm as lm_task

if TYPE_CHECKING:
    import torch

    from lexiedge.api import DataSplits



CURVES_PNG = "curves.png"


def target_count(labels: torch.Tensor) -> int:
    """Tokens the loss scores: labels after the model's one-token shift that are not ignored."""
    return int((labels[:, 1:] != -100).sum())


def real_token_count(batch: dict[str, torch.Tensor], pad_id: int | None) -> int:
    """Tokens that are not padding: the attention mask's ones, else all but each row's trailing pad run."""
    mask = batch.get("attention_mask")
    if mask is not None:
        return int(mask.sum())
    input_ids = batch["input_ids"]
    if pad_id is None:
        return input_ids.numel()
    trailing = (input_ids.flip(-1) == pad_id).long().cumprod(-1)
    return input_ids.numel() - int(trailing.sum())


class Throughput:
    """Tokens trained since the last report, timed from the first micro-batch after it."""

    def __init__(self) -> None:
        self.tokens = self.targets = 0
        self.started: float | None = None

    def add(self, tokens: int, targets: int) -> None:
        if self.started is None:
            self.started = time.perf_counter()
        self.tokens += tokens
        self.targets += targets

    def report(self) -> dict[str, float]:
        import torch

        if self.started is None:
            return {}
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # kernels run asynchronously: count the time they really took
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        report = {"tokens_per_s": self.tokens / elapsed, "target_tokens_per_s": self.targets / elapsed}
        self.__init__()
        return report


class CausalLMTrainer(TrainerPlugin, TrainTask):
    """LoRA fine-tuning on chat data; the best checkpoint is the one with the lowest validation loss."""

    name: ClassVar[str] = "causal-lm-lora"
    description: ClassVar[str] = (
        "causal-LM LoRA fine-tuning: loss on answer tokens, packed rows, adapter-only checkpoints"
    )
    Settings = CausalLMSettings
    tasks: ClassVar[frozenset[str]] = frozenset({lm_task.NAME})
    best_metric = ("val/loss", "min")
    keeps_ragged_batch = True  # RMSNorm, no batch statistics: every example trains every epoch

    def __init__(self) -> None:
        self.throughput = Throughput()

    # --- TrainTask --------------------------------------------------------------------------------

    def loss(self, built: BuiltModel, batch: dict[str, Any]) -> torch.Tensor:
        """Mean cross-entropy over the batch's answer tokens (packed examples kept apart)."""
        from lexiedge_causal_lm.inputs import answer_token_loss, model_inputs

        inputs = model_inputs(batch)
        targets = target_count(inputs["labels"])
        pad_id = getattr(built.tokenizer, "pad_token_id", None)
        self.throughput.add(real_token_count(batch, pad_id), targets)
        # the output layer on answer tokens only; a batch without one teaches nothing (zero, not NaN)
        return answer_token_loss(built.module, inputs)

    def train_metrics(self) -> dict[str, float]:
        return self.throughput.report()

    def compile_targets(self, built: BuiltModel) -> list[torch.nn.Module]:
        """The decoder, which :func:`answer_token_loss` calls directly (the output layer then runs eagerly
        on the answer tokens alone); the whole model where the loss takes the plain forward."""
        from lexiedge_causal_lm.inputs import plain_head_lm

        causal_lm = plain_head_lm(built.module)
        return [causal_lm.model] if causal_lm is not None else [built.module]

    def evaluate(self, built: BuiltModel, loader: Iterable[dict[str, Any]], split: str) -> dict[str, Any]:
        """Token-weighted loss over the whole split (not a mean of batch means) and its perplexity."""
        from lexiedge_causal_lm.inputs import answer_token_loss, model_inputs

        loss_sum, targets = 0.0, 0
        for batch in loader:
            inputs = model_inputs(batch)
            count = target_count(inputs["labels"])
            if count:
                loss_sum += float(answer_token_loss(built.module, inputs)) * count
                targets += count
        loss = loss_sum / targets if targets else float("nan")
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": targets}

    def checkpoint_state(self, built: BuiltModel) -> dict[str, torch.Tensor]:
        """The adapter's tensors only (peft's names, without the adapter name)."""
        from peft import get_peft_model_state_dict

        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in get_peft_model_state_dict(built.module).items()}

    def load_checkpoint_state(self, built: BuiltModel, state: dict[str, torch.Tensor]) -> None:
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(built.module, state)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise ValueError(f"checkpoint tensors that fit no adapter weight: {unexpected[:3]}")

    def on_run_end(self, built: BuiltModel, run_dir: Path, splits: DataSplits, history: list[dict]) -> dict[str, Any]:
        """Write ``final/adapter/`` (peft format + tokenizer) from the final weights, then restore the best ones;
        draw the loss and perplexity curves (``curves.png``)."""
        from safetensors.torch import load_file

        from lexiedge.rundir import WEIGHTS, final_adapter, final_dir

        from lexiedge_causal_lm.plots import plot_lm_curves

        current = self.checkpoint_state(built)  # the best weights when the run kept a best checkpoint
        self.load_checkpoint_state(built, load_file(final_dir(Path(run_dir)) / WEIGHTS))
        try:
            save_adapter(built, final_adapter(Path(run_dir)))
        finally:
            self.load_checkpoint_state(built, current)
        curves = plot_lm_curves(history, Path(run_dir) / CURVES_PNG)
        return {"adapter_dir": str(final_adapter(Path("."))), "curves_png": str(curves)}  # adapter: run-relative

    # --- TrainerPlugin ----------------------------------------------------------------------------

    def fit(self, job: TrainJob) -> TrainResult:
        from lexiedge.train import Engine, prepare

        built, splits = prepare(job)
        save_to_run = built.extras.get("save_to_run")
        if save_to_run is not None and int(os.environ.get("RANK", "0")) == 0:
            job.run_dir.mkdir(parents=True, exist_ok=True)
            save_to_run(job.run_dir)  # what `lexiedge merge` needs to get the same base back
        return Engine(job, job.entry.train.settings, built, splits, task=self).run()


def save_adapter(built: BuiltModel, out_dir: Path) -> Path:
    """The adapter in peft's format (adapter_config.json + adapter_model.safetensors) and the tokenizer."""
    tmp = out_dir.parent / f".{out_dir.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    built.module.save_pretrained(tmp)
    if built.tokenizer is not None:
        built.tokenizer.save_pretrained(tmp)
    if out_dir.exists():  # a resumed run that had already finished: replace, never mix
        aside = out_dir.parent / f".{out_dir.name}.old"
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(out_dir, aside)
        shutil.rmtree(aside)
    os.replace(tmp, out_dir)
    return out_dir
