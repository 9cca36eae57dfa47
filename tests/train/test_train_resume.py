"""SIGKILL in the middle of an epoch, then --resume: the same final weights as a run never interrupted."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from lexiedge.train import checkpoint as ckpt
from train_fixtures import finish, read_meta, start_training, subprocess_env

# 96 samples, micro-batch 8 x accum 2: 6 steps per epoch, 18 in all; step 4 is 64 samples into epoch 0
TRAIN = {"epochs": 3, "batch_size": 8, "grad_accum": 2, "checkpoint_every": 4, "keep_last": 2, "lr": 5e-3}


def _wait_until_stopped(process, deadline_s: float = 180) -> None:
    """The training process SIGSTOPs itself 20 samples after its first checkpoint (see train_fixtures)."""
    handle = psutil.Process(process.pid)
    deadline = time.monotonic() + deadline_s
    while handle.status() != psutil.STATUS_STOPPED:
        assert process.poll() is None, f"the run ended before it could be killed:\n{process.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "the run never reached its first checkpoint"
        time.sleep(0.02)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _tensorboard_curve(run: Path, tag: str) -> list[tuple[int, float]]:
    """What TensorBoard shows for ``tag`` in the run's tb/ (every event file, purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def _deterministic(row: dict) -> dict:
    """A history/metrics row without wall-clock and memory fields, and without the task's running train metrics."""
    skip = ("samples_per_s", "peak_memory_mb", "train/uar", "train/war", "train/macro_f1", "train/confusion")
    return {key: value for key, value in row.items() if key not in skip}


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tiny_profile, tmp_path: Path) -> None:
    profile = tiny_profile(train=TRAIN)
    reference_run, killed_run = tmp_path / "reference", tmp_path / "killed"
    reference = start_training(profile, reference_run)
    victim = start_training(profile, killed_run, env=subprocess_env(TINY_STOP_AFTER_CHECKPOINT=f"20:{killed_run}"))
    try:
        _wait_until_stopped(victim)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    finish(reference)

    # killed during step 6, two steps after its only checkpoint: those steps were logged, then lost
    assert [p.name for p in ckpt.list_checkpoints(killed_run / "checkpoints")] == ["step-00000004"]
    assert json.loads((killed_run / "run.json").read_text())["status"] == "running"
    assert max(r["step"] for r in _records(killed_run)) == 5
    assert not (killed_run / "final").exists()
    meta = read_meta(killed_run / "checkpoints" / "step-00000004")
    assert (meta["epoch"], meta["position"]) == (0, 64)  # mid-epoch

    finish(start_training(profile, killed_run, "--resume"))

    reference_final = load_file(reference_run / "final" / "model.safetensors")
    resumed_final = load_file(killed_run / "final" / "model.safetensors")
    assert reference_final.keys() == resumed_final.keys()
    for name, tensor in reference_final.items():
        assert torch.equal(tensor, resumed_final[name]), f"{name} differs after resume"
    # it really trained: the final weights are not the initial ones of step 4
    step4 = load_file(killed_run / "checkpoints" / "step-00000016" / "model.safetensors")
    assert not torch.equal(step4["head.weight"], resumed_final["head.weight"])

    # the same best checkpoint, test report, history and per-step log (the lost steps logged once)
    reference_best = load_file(reference_run / "checkpoints" / "best" / "model.safetensors")
    resumed_best = load_file(killed_run / "checkpoints" / "best" / "model.safetensors")
    assert all(torch.equal(t, resumed_best[k]) for k, t in reference_best.items())
    assert json.loads((killed_run / "test_metrics.json").read_text()) == json.loads(
        (reference_run / "test_metrics.json").read_text()
    )
    history = [_deterministic(r) for r in json.loads((killed_run / "history.json").read_text())]
    assert history == [_deterministic(r) for r in json.loads((reference_run / "history.json").read_text())]
    assert [_deterministic(r) for r in _records(killed_run)] == [_deterministic(r) for r in _records(reference_run)]
    steps = [r["step"] for r in _records(killed_run) if "event" not in r]
    assert steps == list(range(1, 19))

    run_info = json.loads((killed_run / "run.json").read_text())
    assert run_info["status"] == "completed" and run_info["step"] == 18 and len(run_info["resumed"]) == 1

    # TensorBoard shows one curve: the steps logged after the checkpoint and lost are purged, then logged again
    curve = _tensorboard_curve(killed_run, "train/loss")
    assert [step for step, _ in curve] == list(range(1, 19))
    assert curve == _tensorboard_curve(reference_run, "train/loss")  # bit-identical, as the weights are
    per_step = {r["step"]: r["train/loss"] for r in _records(killed_run) if "event" not in r}
    assert [value for _, value in curve] == pytest.approx([per_step[step] for step in range(1, 19)], rel=1e-6)
    assert [step for step, _ in _tensorboard_curve(killed_run, "val/uar")] == [6, 12, 18]
