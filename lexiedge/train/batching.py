"""Micro-batches: their size, their order, and how a run restarts in the middle of an epoch.

Every epoch's order is a pure function of (seed, epoch): :class:`EpochSampler` is torch's
DistributedSampler (one replica when not distributed), which shuffles with ``seed + epoch``, plus a
start offset. A resumed run rebuilds the epoch's order and skips the samples already consumed, so
it sees exactly the batches the interrupted run would have seen. Positions are counted in samples,
not batches, so they survive a change of micro-batch (after a CUDA out-of-memory error).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lexiedge.errors import LexiedgeError
from lexiedge.train.device import seed_worker

if TYPE_CHECKING:
    from lexiedge.train.settings import EngineSettings


def resolve_batch(
    settings: EngineSettings, world_size: int, auto_micro_batch: Callable[[], int] | None = None
) -> tuple[int, int]:
    """(micro-batch per device, gradient accumulation) from the settings.

    ``effective_batch`` (samples per optimizer step over all devices), when set, decides the
    accumulation; ``batch_size: auto`` asks ``auto_micro_batch`` (the memory planner) for the micro-batch.
    """
    if settings.batch_size == "auto":
        if auto_micro_batch is None:
            raise LexiedgeError("batch_size 'auto' needs the memory planner (lexiedge plan) to pick a micro-batch")
        micro = auto_micro_batch()
        if micro < 1:
            raise LexiedgeError(
                "batch_size auto: not even a micro-batch of 1 fits the profile's memory budget "
                "(see `lexiedge plan`); use a smaller model or a profile for a larger device"
            )
    else:
        micro = int(settings.batch_size)
    if settings.effective_batch is None:
        return micro, settings.grad_accum
    return micro, max(1, math.ceil(settings.effective_batch / (micro * world_size)))


def shrink_after_oom(micro_batch: int, grad_accum: int) -> tuple[int, int]:
    """Halve the micro-batch and accumulate more, keeping the samples per optimizer step (rounded up)."""
    if micro_batch <= 1:
        raise LexiedgeError(
            "CUDA out of memory at micro-batch 1: the model does not fit this GPU at these settings; "
            "lower the model size or sequence length, or use a profile for a larger GPU (check with `lexiedge plan`)"
        )
    smaller = micro_batch // 2
    return smaller, math.ceil(micro_batch * grad_accum / smaller)


def steps_per_epoch(samples_per_rank: int, micro_batch: int, grad_accum: int, drop_last: bool) -> int:
    """Optimizer steps in one epoch; the last one may accumulate fewer micro-batches."""
    batches = samples_per_rank // micro_batch if drop_last else math.ceil(samples_per_rank / micro_batch)
    return math.ceil(batches / grad_accum)


def epoch_generator_seed(seed: int, epoch: int) -> int:
    """The seed of an epoch's DataLoader generator (worker seeds derive from it)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class EpochSampler(DistributedSampler):
    """DistributedSampler whose epoch can start part-way (``start`` samples of this rank already seen)."""

    def __init__(self, dataset: Dataset, *, world_size: int, rank: int, seed: int, shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def start_epoch(self, epoch: int, start: int = 0) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return self.num_samples - self.start


def train_loader(
    dataset: Dataset,
    sampler: EpochSampler,
    micro_batch: int,
    collate: Callable | None,
    settings: EngineSettings,
    pin_memory: bool,
    keep_ragged: bool = False,
) -> DataLoader:
    """The loader of the current epoch from the sampler's start; its own generator keeps the global RNG untouched."""
    generator = torch.Generator().manual_seed(epoch_generator_seed(settings.seed, sampler.epoch))
    return DataLoader(
        dataset,
        batch_size=micro_batch,
        sampler=sampler,
        collate_fn=collate,
        num_workers=settings.num_workers,
        pin_memory=pin_memory,
        drop_last=train_drop_last(sampler.num_samples, micro_batch, keep_ragged),
        generator=generator,
        worker_init_fn=seed_worker,
    )


def train_drop_last(samples_per_rank: int, micro_batch: int, keep_ragged: bool = False) -> bool:
    """Drop an epoch's ragged last micro-batch (a batch of 1 breaks batch statistics) unless it is all there
    is, or the task keeps it (:attr:`lexiedge.api.TrainTask.keeps_ragged_batch`: no batch statistics)."""
    return not keep_ragged and samples_per_rank >= micro_batch


def eval_loader(dataset: Dataset, batch_size: int, collate: Callable | None, num_workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(0),  # never draw from the global RNG (exact resume)
        worker_init_fn=seed_worker,
    )


def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors (in dicts, lists, tuples) moved to ``device``; anything else unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def batch_length(batch: Any) -> int:
    """Samples in a collated batch: the leading size of its first tensor (or list)."""
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else [batch]
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    for value in values:
        if isinstance(value, (list, tuple)):
            return len(value)
    raise TypeError("cannot tell the number of samples in a batch without a tensor or list in it")


class DeviceBatches:
    """Iterates a loader, handing out batches already on the device (what TrainTask.evaluate gets)."""

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self.loader = loader
        self.device = device

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            yield to_device(batch, self.device)

    def __len__(self) -> int:
        return len(self.loader)
