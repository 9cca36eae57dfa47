"""Build the model and load the data of a training job, as its plugins say."""

from __future__ import annotations

import torch
from rich.console import Console

from lexiedge.api import BuiltModel, DataSplits, TrainJob
from lexiedge.train.device import seed_everything
from lexiedge.train.distributed import barrier, init_distributed
from lexiedge.cache import cache_dir


def prepare(job: TrainJob) -> tuple[BuiltModel, DataSplits]:
    """Build the model (seeded) and load the data, as the job's plugins say.

    Under torchrun, rank 0 loads first (filling the cache) and the other ranks then read its cache.
    """
    use_cuda = job.profile.device.kind == "cuda" and torch.cuda.is_available()
    info = init_distributed(use_cuda)
    seed_everything(getattr(job.entry.train.settings, "seed", 0))
    built = job.model_plugin.build(job.entry.model.settings, job.profile.device, pretrained=True)
    if not info.is_main:
        barrier()
    splits = job.data_plugin.load(
        job.entry.data.settings,
        job.data_path,
        built=built,
        model_settings=job.entry.model.settings,
        cache_dir=cache_dir(),
        console=job.console if info.is_main else Console(quiet=True),
    )
    if info.is_main:
        barrier()
        warning = missing_splits_warning(splits, job.model_key)
        if warning:
            job.console.print(warning, style="yellow", markup=False, highlight=False, soft_wrap=True)
    return built, splits


def missing_splits_warning(splits: DataSplits, model_key: str) -> str | None:
    """One line when the data holds nothing out for validation (RAVDESS with one actor: every clip
    trains), saying what the run will lack; None when there is a validation split. A missing test
    split alone is a choice (chat-jsonl's default test_fraction is 0) and says nothing."""
    if _size(splits.val):
        return None
    train = _size(splits.train)
    what = "no validation split" if _size(splits.test) else "no validation split and no test split"
    lost = ("the last weights are kept (no best checkpoint, no early stopping)" if _size(splits.test) else
            "the last weights are kept (no best checkpoint), nothing is scored on held-out data, and `lexiedge "
            "export` will have no held-out examples to verify the artifact on")
    return (f"warning: the data has {what} (all {train} examples train): {lost}; add data, or change the "
            f"split settings of models.{model_key}.data")


def _size(dataset) -> int:
    return 0 if dataset is None else len(dataset)
