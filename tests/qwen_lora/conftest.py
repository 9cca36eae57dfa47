"""Fixtures of the qwen-lora tests: a tiny Qwen2 built here (real tokenizer, random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lexiedge.profile import DeviceSpec

CPU = DeviceSpec(kind="cpu", memory_gb=8, precision="fp32")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 directory, as a hub snapshot would look (built once per session)."""
    from lexiedge_qwen_lora.tiny import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("qwen") / "tiny-qwen2")


@pytest.fixture
def cpu() -> DeviceSpec:
    return CPU
