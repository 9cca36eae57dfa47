"""Two CPU processes under torchrun (gloo): one run directory, written once, same layout as one process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

import train_fixtures
from train_fixtures import subprocess_env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_trains_and_writes_one_run_directory(tiny_profile, tmp_path: Path) -> None:
    profile = tiny_profile(train={"epochs": 2, "batch_size": 8, "checkpoint_every": 4, "keep_last": 1})
    run = tmp_path / "ddp-run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        train_fixtures.__file__, str(profile), str(run),
    ]  # fmt: skip
    done = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["world_size"] == 2
    # 96 samples split over 2 ranks: 48 each, 6 micro-batches of 8 per epoch, 2 epochs
    assert info["step"] == 12 and info["total_steps"] == 12
    history = json.loads((run / "history.json").read_text())
    assert [row["step"] for row in history] == [6, 12]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "event" not in r] == list(range(1, 13))  # rank 0 alone logged
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best", "step-00000012"]
    for name in ("profile.yaml", "final/model.safetensors", "test_metrics.json", "curves.png", "confusion.png"):
        assert (run / name).is_file(), name
    final = load_file(run / "final" / "model.safetensors")
    assert set(final) == {"audio.weight", "audio.bias", "visual.weight", "visual.bias", "head.weight", "head.bias"}
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["samples"] == 48 and test["uar"] >= 0.85  # evaluated on rank 0 over the whole test split
    assert not any(p.name.startswith(".") for p in run.rglob("*")), "temp files left behind"
