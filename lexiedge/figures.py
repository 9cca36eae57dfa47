"""Writing matplotlib figures as report PNGs: the Agg canvas (no GUI backend, no pyplot state), atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lexiedge import atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_png(figure: Figure, path: Path, *, dpi: int = 110) -> Path:
    """Render ``figure`` beside ``path``, then rename it into place: a reader never sees half a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    with atomic.atomic_path(path, suffix=".tmp.png") as tmp:  # savefig picks the format from the extension
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return path
