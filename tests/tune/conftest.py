"""Fixtures of the tune tests: a synthetic RAVDESS-layout set and the tiny emotion-av profile they search."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from cli_runner import lexiedge_ok

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tune_fixtures


@pytest.fixture(scope="session")
def synth_av(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 synthetic actors (4 train, 1 validation, 1 test), 2 clips per emotion: 96 real mp4 files."""
    root = tmp_path_factory.mktemp("tune-synth-av")
    lexiedge_ok("data", "synth-av", "--out", root, "--actors", "6", "--clips-per-emotion", "2", "--force")
    return root


@pytest.fixture
def space_file(tmp_path: Path):
    """``space_file({...})`` writes a --space YAML file and returns its path."""
    counter = iter(range(1000))

    def write(document: dict) -> Path:
        path = tmp_path / f"space-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    return write
