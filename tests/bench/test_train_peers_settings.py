"""bench/bench_train_peers.py compares like with like: the lexiedge profile it trains and the
transformers.Trainer arguments it passes carry the same settings, and a difference stops the bench."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_train_peers as peers


@pytest.fixture(scope="module")
def comparable() -> peers.Comparable:
    args = peers.parse_args(
        [
            "--base",
            "tiny",
            "--seq-len",
            "256",
            "--steps",
            "40",
            "--rows",
            "4",
            "--lr",
            "3e-3",
            "--lora-r",
            "4",
            "--lora-alpha",
            "8",
            "--lora-targets",
            "q_proj,v_proj",
        ]
    )
    c, data = peers.comparable_settings(args)
    # real tokens per step matched: examples per step = packed rows x examples per packed row
    assert c.examples_per_step == round(4 * data["train_examples"] / data["packed_rows"])
    return c


def test_the_lexiedge_profile_and_the_trainer_arguments_carry_the_same_settings(
    comparable: peers.Comparable, tmp_path: Path
) -> None:
    from lexiedge.train.optim import Schedule

    c = comparable
    for packing, batch in ((True, c.rows), (False, c.examples_per_step)):
        entry = peers.load_profile(c, packing).model(peers.MODEL)
        train, model = entry.train.settings, entry.model.settings
        assert entry.data.settings.packing is packing and train.batch_size == batch and train.grad_accum == 1
        assert (train.lr, train.weight_decay, train.grad_clip, train.max_steps) == (
            c.lr,
            c.weight_decay,
            c.grad_clip,
            c.steps,
        )
        assert Schedule.from_settings(train, c.total_steps).warmup_steps == c.warmup_steps
        assert (model.base, model.seq_len, model.lora.r, model.lora.alpha, model.lora.dropout) == (
            c.base,
            c.seq_len,
            c.lora_r,
            c.lora_alpha,
            c.lora_dropout,
        )
        assert tuple(model.lora.target_modules) == c.lora_targets == ("q_proj", "v_proj")
        assert train.trackers == [] and entry.data.settings.val_fraction == c.val_fraction

    hf = peers.hf_training_arguments(c, tmp_path)
    assert (hf.per_device_train_batch_size, hf.gradient_accumulation_steps, hf.max_steps) == (
        c.examples_per_step,
        1,
        c.steps,
    )
    assert (hf.learning_rate, hf.weight_decay, hf.max_grad_norm, hf.warmup_steps) == (
        c.lr,
        c.weight_decay,
        c.grad_clip,
        c.warmup_steps,
    )
    assert hf.lr_scheduler_type.value == "cosine" and hf.optim.value.startswith("adamw_torch")
    assert c.warmup_steps == 2  # 5% of 40 steps: a warmup both schedules really take
    assert not hf.dataloader_drop_last and hf.report_to in ([], None, ["none"])


def test_runs_with_different_settings_stop_the_bench(comparable: peers.Comparable) -> None:
    import dataclasses

    same = dataclasses.asdict(comparable)
    peers.check_comparable([same, dict(same)])
    with pytest.raises(SystemExit, match="lr"):
        peers.check_comparable([same, {**same, "lr": comparable.lr * 2}])
