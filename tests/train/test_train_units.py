"""The engine's small pure helpers: schedule, batch sizes, the OOM policy, data order, device choice."""

from __future__ import annotations

import math

import pytest
import torch
from rich.console import Console

from lexiedge.errors import LexiedgeError, NotAvailableError
from lexiedge.profile import DeviceSpec
from lexiedge.train.batching import EpochSampler, resolve_batch, shrink_after_oom, steps_per_epoch
from lexiedge.train.device import resolve_precision, select_device
from lexiedge.train.optim import Schedule, build_optimizer, lr_at, parameter_groups
from lexiedge.train.settings import EngineSettings
from lexiedge.train.task import is_better


def test_schedule_warms_up_linearly_then_follows_a_cosine_to_the_floor() -> None:
    base, total, warmup, floor = 1e-3, 110, 10, 0.1
    lrs = [lr_at(step, base, total, warmup, floor) for step in range(total + 5)]
    assert lrs[0] == pytest.approx(base / 11)  # (0 + 1) / (10 + 1): never a wasted step at lr 0
    assert lrs[4] == pytest.approx(base * 5 / 11)
    assert lrs[warmup] == pytest.approx(base)  # the peak, first step after warmup
    assert lrs[60] == pytest.approx(base * (floor + (1 - floor) * 0.5))  # half way down the cosine
    assert lrs[85] == pytest.approx(base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * 0.75))))
    assert all(a >= b for a, b in zip(lrs[warmup:], lrs[warmup + 1 :]))  # never rises after warmup
    assert lrs[total] == lrs[-1] == pytest.approx(base * floor)  # past the end: the floor
    assert lr_at(0, 1.0, 10, 0, 0.0) == 1.0  # no warmup: starts at the peak


def test_schedule_from_settings_rounds_the_warmup_share() -> None:
    schedule = Schedule.from_settings(EngineSettings(lr=2e-3, warmup_ratio=0.05, min_lr_ratio=0.2), total_steps=300)
    assert (schedule.warmup_steps, schedule.total_steps) == (15, 300)
    assert schedule.lr_at(15) == pytest.approx(2e-3) and schedule.lr_at(300) == pytest.approx(4e-4)


def test_warm_restarts_start_each_cycle_at_the_peak() -> None:
    settings = EngineSettings(lr=1e-3, warmup_ratio=0.0, min_lr_ratio=0.01, restart_epochs=2, epochs=6)
    schedule = Schedule.from_settings(settings, total_steps=60, steps_per_epoch=10)
    assert schedule.restart_steps == 20 and schedule.as_dict()["kind"] == "warmup-cosine-restarts"
    lrs = [schedule.lr_at(step) for step in range(60)]
    assert [lrs[0], lrs[20], lrs[40]] == [pytest.approx(1e-3)] * 3, "every cycle starts at lr"
    assert lrs[10] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5)), "half way down the first cycle"
    assert lrs[19] < 2e-5 and lrs[59] < 2e-5, "each cycle ends at the floor, the run's last step too"
    plain_settings = EngineSettings(lr=1e-3, warmup_ratio=0.0)
    plain = Schedule.from_settings(plain_settings, total_steps=60, steps_per_epoch=10)
    assert plain.restart_steps is None and plain.lr_at(20) < plain.lr_at(10), "without restarts: one cosine"


def test_batch_resolution_keeps_the_effective_batch() -> None:
    assert resolve_batch(EngineSettings(batch_size=8, grad_accum=3), world_size=1) == (8, 3)
    assert resolve_batch(EngineSettings(batch_size=4, effective_batch=24), world_size=1) == (4, 6)
    assert resolve_batch(EngineSettings(batch_size=4, effective_batch=24), world_size=2) == (4, 3)
    auto = EngineSettings(batch_size="auto", effective_batch=24)
    assert resolve_batch(auto, 1, auto_micro_batch=lambda: 5) == (5, 5)  # 25 >= 24: rounded up
    with pytest.raises(LexiedgeError, match="not even a micro-batch of 1 fits"):
        resolve_batch(auto, 1, auto_micro_batch=lambda: 0)


def test_oom_policy_halves_the_micro_batch_and_keeps_the_samples_per_step() -> None:
    assert shrink_after_oom(16, 1) == (8, 2)
    assert shrink_after_oom(8, 3) == (4, 6)
    assert shrink_after_oom(3, 1) == (1, 3)  # odd: exact effective batch 3 with 1 x 3
    assert shrink_after_oom(5, 2) == (2, 5)
    sizes = [(16, 1)]
    while sizes[-1][0] > 1:
        sizes.append(shrink_after_oom(*sizes[-1]))
    assert sizes == [(16, 1), (8, 2), (4, 4), (2, 8), (1, 16)]
    with pytest.raises(LexiedgeError, match="out of memory at micro-batch 1"):
        shrink_after_oom(1, 16)


def test_steps_per_epoch_counts_the_ragged_last_step() -> None:
    assert steps_per_epoch(96, 8, 1, drop_last=True) == 12
    assert steps_per_epoch(100, 8, 1, drop_last=True) == 12  # 4 samples dropped
    assert steps_per_epoch(100, 8, 1, drop_last=False) == 13
    assert steps_per_epoch(96, 8, 5, drop_last=True) == 3  # 12 micro-batches: 5 + 5 + 2


def test_epoch_sampler_restarts_mid_epoch_on_the_same_order() -> None:
    data = list(range(50))
    sampler = EpochSampler(data, world_size=1, rank=0, seed=3)
    sampler.start_epoch(2)
    full = list(sampler)
    assert sorted(full) == data and full != data  # shuffled, everything once
    sampler.start_epoch(2, start=17)
    assert list(sampler) == full[17:] and len(sampler) == 33
    sampler.start_epoch(3)
    assert list(sampler) != full  # another epoch, another order
    shards = [EpochSampler(data, world_size=2, rank=rank, seed=3) for rank in (0, 1)]
    for shard in shards:
        shard.start_epoch(2)
    assert sorted(list(shards[0]) + list(shards[1])) == data  # two ranks split one epoch between them


def test_a_cuda_profile_on_a_machine_without_cuda_trains_on_the_cpu_in_fp32() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the fallback is for machines without it")
    console = Console(record=True, width=200)
    spec = DeviceSpec(kind="cuda", memory_gb=4, precision="fp16")
    device = select_device(spec, local_rank=0, console=console)
    assert device.type == "cpu"
    lines = console.export_text().strip().splitlines()
    assert len(lines) == 1 and "CUDA" in lines[0] and "training on the CPU in fp32" in lines[0]
    assert resolve_precision("auto", spec, device, console) == "fp32"
    assert resolve_precision("bf16", spec, device, console) == "fp32"


def test_8bit_adamw_on_the_cpu_says_it_needs_cuda() -> None:
    parameters = list(torch.nn.Linear(4, 2).parameters())
    with pytest.raises(NotAvailableError, match="needs a CUDA GPU and bitsandbytes.*gpu"):
        build_optimizer(parameters, EngineSettings(optimizer="adamw-8bit"), torch.device("cpu"))
    optimizer = build_optimizer(parameters, EngineSettings(weight_decay=0.1), torch.device("cpu"))
    decays = sorted(group["weight_decay"] for group in optimizer.param_groups)
    assert decays == [0.0, 0.1]  # the bias is not decayed, the weight matrix is


def test_parameter_groups_decay_matrices_only() -> None:
    layer = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    groups = parameter_groups(list(layer.parameters()), 0.05)
    assert [len(g["params"]) for g in groups] == [1, 3] and groups[0]["params"][0] is layer[0].weight


def test_best_metric_comparison() -> None:
    assert is_better(0.5, None, "max") and is_better(0.6, 0.5, "max") and not is_better(0.5, 0.5, "max")
    assert is_better(0.4, 0.5, "min") and not is_better(0.6, 0.5, "min")
    assert not is_better(float("nan"), None, "max")
