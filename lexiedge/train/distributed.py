"""Data-parallel training under ``torchrun``: who am I, and the few collectives the engine needs.

``torchrun --nproc-per-node N`` sets WORLD_SIZE, RANK and LOCAL_RANK; without them the run is a
single process and every helper here is a no-op. Rank 0 owns the run directory: it alone writes
files, prints, and evaluates (the other ranks wait at a barrier), so evaluation metrics are rank 0's
over the whole split, never a gather of shards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info_from_env() -> DistInfo:
    return DistInfo(
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        rank=int(os.environ.get("RANK", "0")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the process group torchrun set up (nccl on CUDA, gloo on CPU); idempotent."""
    info = dist_info_from_env()
    if info.distributed and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def mean_across_ranks(value: float, device: torch.device) -> float:
    """The mean of a scalar over all ranks (the train loss each rank saw on its shard)."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


