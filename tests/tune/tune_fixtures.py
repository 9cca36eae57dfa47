"""Names the tune tests share (importable: conftest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
TINY_PROFILE = (
    HERE / "tiny-av.yaml"
)  # extends cpu: the same plugins, the smallest sizes that learn in an epoch
MODEL = "emotion-av"
