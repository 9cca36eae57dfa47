"""Checkpoints are whole or absent: failures and SIGKILL mid-write never leave a partial one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from lexiedge.errors import DiskFullError
from lexiedge.train import checkpoint as ckpt
from train_fixtures import read_meta


def _weights(value: float, size: int = 16) -> dict[str, torch.Tensor]:
    shared = torch.full((size, size), value)
    return {"layer.weight": shared, "tied.weight": shared, "bias": torch.arange(size, dtype=torch.float32)}


def _state(step: int) -> dict:
    optimizer = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters())
    return {"step": step, "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(), "best": {"value": None}}


def test_checkpoints_keep_the_last_n_and_load_with_weights_only(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    for step in (50, 100, 150, 200, 250):
        ckpt.save_checkpoint(root, step, _weights(step), _state(step), {"step": step})
        ckpt.prune(root, keep_last=2)
    assert [p.name for p in ckpt.list_checkpoints(root)] == ["step-00000200", "step-00000250"]
    assert sorted(p.name for p in root.iterdir()) == ["step-00000200", "step-00000250"]  # nothing else left
    latest = ckpt.list_checkpoints(root)[-1]
    state = torch.load(latest / ckpt.TRAINER_STATE, weights_only=True)  # plain data only
    assert state["step"] == 250 and read_meta(latest) == {"step": 250}
    weights = ckpt.load_weights(latest / ckpt.WEIGHTS)
    assert torch.equal(weights["tied.weight"], torch.full((16, 16), 250.0))  # tied tensors were saved apart


def test_a_failure_while_writing_leaves_no_partial_checkpoint(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "checkpoints"
    ckpt.save_checkpoint(root, 10, _weights(1.0), _state(10), {"step": 10})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", disk_full)  # fails after model.safetensors was written
    with pytest.raises(DiskFullError, match="no space left .* step-00000020: the partial checkpoint was removed"):
        ckpt.save_checkpoint(root, 20, _weights(2.0), _state(20), {"step": 20})
    monkeypatch.setattr(ckpt, "_fsync_file", disk_full)  # best/ has no trainer state: fail its fsync instead
    with pytest.raises(DiskFullError, match="no space left"):
        ckpt.save_best(root, _weights(2.0), {"step": 20})
    monkeypatch.undo()
    assert [p.name for p in root.iterdir()] == ["step-00000010"]  # no step-20, no best, no temp directory
    assert [p.name for p in ckpt.list_checkpoints(root)] == ["step-00000010"]
    assert ckpt.load_trainer_state(root / "step-00000010")["step"] == 10


def test_best_is_swapped_atomically_and_recovered_after_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    ckpt.save_best(root, _weights(1.0), {"step": 1})
    ckpt.save_best(root, _weights(2.0), {"step": 2})
    assert read_meta(root / "best") == {"step": 2}
    # the instant between "old best aside" and "new best in": only the old one and a temp dir exist
    os.replace(root / "best", root / ".old-best")
    (root / ".tmp-best-xyz").mkdir()
    (root / ".tmp-best-xyz" / "model.safetensors").write_bytes(b"partial")
    ckpt.recover(root)
    assert sorted(p.name for p in root.iterdir()) == ["best"]
    assert read_meta(root / "best") == {"step": 2}
    assert torch.equal(ckpt.load_weights(root / "best" / "model.safetensors")["bias"], torch.arange(16.0))


SAVE_FOREVER = textwrap.dedent(
    """
    import sys, torch
    from pathlib import Path
    from lexiedge.train import checkpoint as ckpt
    root = Path(sys.argv[1])
    big = torch.randn(1024, 1024)  # 4 MB per checkpoint: writes take long enough to be interrupted
    step = 0
    while True:
        step += 1
        weights = {"w": big + step, "step": torch.tensor([step])}
        ckpt.save_checkpoint(root, step, weights, {"step": step, "rng": torch.get_rng_state()}, {"step": step})
        ckpt.prune(root, keep_last=2)
        ckpt.save_best(root, weights, {"step": step})
    """
)


def test_sigkill_at_any_moment_leaves_only_complete_checkpoints(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    for kill_after in (3, 6):  # two different moments
        process = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(root)])
        try:
            deadline = time.monotonic() + 120
            while not (root / ckpt.step_dir_name(kill_after)).exists():
                assert process.poll() is None, "the saving process died on its own"
                assert time.monotonic() < deadline, "no checkpoint appeared"
                time.sleep(0.005)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        ckpt.recover(root)
        checkpoints = ckpt.list_checkpoints(root)
        assert len(checkpoints) in (2, 3)  # keep_last 2 (+1 when killed between save and prune)
        assert {p.name for p in root.iterdir()} == {p.name for p in checkpoints} | {"best"}
        for path in checkpoints:
            step = read_meta(path)["step"]
            assert ckpt.load_trainer_state(path)["step"] == step
            assert int(ckpt.load_weights(path / ckpt.WEIGHTS)["step"]) == step
        assert int(ckpt.load_weights(root / "best" / ckpt.WEIGHTS)["step"]) == read_meta(root / "best")["step"]
