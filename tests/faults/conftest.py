"""Fixtures of the fault suite: the fault plugins registered in this process, one trained run and one
exported artifact (built once per session through the commands a user types, in seconds), and a way
to run lexiedge as a real process with the same plugins."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fault_plugins, also run as a script

import fault_plugins
from fault_helpers import lexiedge_ok, start, wait_until_stopped


@pytest.fixture(scope="session")
def fault_host():
    from lexiedge.plugin import build_host

    return build_host(fault_plugins)


@pytest.fixture(autouse=True)
def _fault_plugins_registered(fault_host) -> Iterator[None]:
    """Every test here sees fault-av and fault-clips beside the installed plugins; others never do."""
    import torch

    from lexiedge.plugin import set_host

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    set_host(fault_host)
    yield
    set_host(None)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fault_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="session")
def profile_path(fault_root: Path) -> Path:
    return fault_plugins.write_profile(fault_root / "fault-profile.yaml")


@pytest.fixture(scope="session")
def trained_run(fault_root: Path, profile_path: Path, fault_host) -> Path:
    """A finished 12-step run (checkpoints at steps 6, 9, 12 and best/). Copy it before changing it."""
    from lexiedge.plugin import set_host

    set_host(fault_host)
    run = fault_root / "run"
    lexiedge_ok("train", "--profile", profile_path, "--out", run)
    return run


@pytest.fixture(scope="session")
def artifact(fault_root: Path, trained_run: Path, fault_host) -> Path:
    """The run exported by the real `onnx` exporter (verified). Copy it before changing it."""
    from lexiedge.plugin import set_host

    set_host(fault_host)
    out = fault_root / "artifact"
    lexiedge_ok("export", "--run", trained_run, "--target", "onnx", "--out", out)
    return out


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


@pytest.fixture
def artifact_copy(artifact: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "artifact"
    shutil.copytree(artifact, copy)
    return copy


@pytest.fixture(scope="session")
def interrupted_run(fault_root: Path, profile_path: Path) -> Path:
    """The same run as ``trained_run``, killed (SIGKILL) right after its step-9 checkpoint: checkpoints
    3, 6, 9 and best/ (step 6). Copy it before resuming it (``interrupted_copy``)."""
    import signal

    run = fault_root / "interrupted"
    process = start("train", "--profile", profile_path, "--out", run,
                    env=fault_plugins.process_env(FAULT_STOP_AFTER_CHECKPOINT="9"))
    try:
        wait_until_stopped(process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    return run


@pytest.fixture
def interrupted_copy(interrupted_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "interrupted"
    shutil.copytree(interrupted_run, copy)
    return copy
