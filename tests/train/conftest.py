"""Fixtures of the training-engine tests: the tiny plugins registered in this process, tiny profiles."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_fixtures, also run as a script

import train_fixtures


@pytest.fixture
def tiny_host():
    """The plugin host of this process holds the tiny fixtures and the real classifier trainer."""
    from lexiedge.plugin import set_host

    train_fixtures.use_test_host()
    yield
    set_host(None)


@pytest.fixture
def tiny_profile(tmp_path: Path, tiny_host):
    """``tiny_profile(train={...}, data={...})`` writes a tiny CPU profile and returns its path."""
    counter = iter(range(1000))

    def make(**sections) -> Path:
        return train_fixtures.write_profile(tmp_path / f"profile-{next(counter)}.yaml", **sections)

    return make
