"""Where plugins cache decoded data and features, shared by every run on the machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$LEXIEDGE_CACHE`` or ``~/.cache/lexiedge`` (created)."""
    override = os.environ.get("LEXIEDGE_CACHE")
    path = Path(override).expanduser() if override else Path.home() / ".cache" / "lexiedge"
    path.mkdir(parents=True, exist_ok=True)
    return path
