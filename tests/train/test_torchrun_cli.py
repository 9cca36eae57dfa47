"""The README's "Scale out" command line, exactly: `torchrun --nproc-per-node 2 -m lexiedge train ...`, two CPU
processes (gloo) on a tiny model for two steps, then a resume with the same command plus --resume."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun() -> list[str]:
    """The `torchrun` script beside this Python (the venv's), else its module."""
    script = Path(sys.executable).with_name("torchrun")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.slow
def test_torchrun_dash_m_lexiedge_train_two_cpu_processes(tmp_path: Path) -> None:
    from lexiedge_qwen_lora.tiny import tiny_base_dir

    tiny_base_dir(0)  # built once here (into the session's LEXIEDGE_CACHE), not by two ranks at once
    run = tmp_path / "run"
    train = ["-m", "lexiedge", "train", "--profile", "cpu", "--model", "qwen-lora",
             "--set", "models.qwen-lora.model.base=random:qwen2-tiny", "--out", str(run)]

    def torchrun(*extra: str) -> subprocess.CompletedProcess:
        command = [*_torchrun(), "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                   "--master-port", str(_free_port()), *train, *extra]
        return subprocess.run(command, capture_output=True, text=True, timeout=240,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})

    done = torchrun("--set", "models.qwen-lora.train.max_steps=2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["world_size"] == 2 and info["step"] == 2
    assert "world size 2" in done.stdout
    assert done.stdout.count(f"done {run}") == 1  # rank 0 speaks for the run; rank 1 is quiet
    # the micro-batch is per process: one optimizer step sees batch_size x grad_accum x 2 rows
    assert "micro-batch 8 x grad_accum 1" in done.stdout

    more = torchrun("--resume", "--set", "models.qwen-lora.train.max_steps=3", "--allow-changes")
    assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["step"] == 3 and info["world_size"] == 2
    assert "resumed from" in more.stdout
