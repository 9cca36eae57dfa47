"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LEXIEDGE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches (features, tiny models) go to a per-session temp dir, never the user's home."""
    if "LEXIEDGE_CACHE" not in os.environ:
        os.environ["LEXIEDGE_CACHE"] = str(tmp_path_factory.mktemp("lexiedge-cache"))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real RAVDESS and JFLEG files); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (see ../shared/data/README.md)")
    return SHARED_DATA


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `lexiedge ARGS...` in-process, as the console script does."""
    from lexiedge.cli import main

    def run(*args: str) -> CliResult:
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
