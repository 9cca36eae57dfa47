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
    return built, splits
