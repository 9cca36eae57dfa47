"""PNG reports of a classifier run: learning curves and the test confusion matrix.

Drawn on matplotlib ``Figure`` objects with the Agg canvas, never pyplot: no GUI backend, no global
figure state, safe in any process. Each file is written beside its final name, then renamed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from lexiedge.figures import save_png


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [(row["epoch"], row[key]) for row in history if isinstance(row.get(key), (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


def plot_curves(history: list[dict[str, Any]], path: Path) -> Path:
    """Loss (left) and UAR/WAR (right) per evaluation, train dashed and validation solid."""
    figure = Figure(figsize=(11, 4))
    loss_axes, score_axes = figure.subplots(1, 2)
    for split, style in (("train", "--"), ("val", "-")):
        epochs, values = _series(history, f"{split}/loss")
        if values:
            loss_axes.plot(epochs, values, style, marker="o", markersize=3, label=f"{split} loss")
        for metric, colour in (("uar", "tab:blue"), ("war", "tab:orange")):
            epochs, values = _series(history, f"{split}/{metric}")
            if values:
                score_axes.plot(epochs, values, style, color=colour, marker="o", markersize=3, label=f"{split} {metric.upper()}")
    loss_axes.set(title="loss", xlabel="epoch", ylabel="cross-entropy")
    score_axes.set(title="UAR / WAR", xlabel="epoch", ylabel="score", ylim=(0.0, 1.02))
    for axes in (loss_axes, score_axes):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    return save_png(figure, path)


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path, title: str) -> Path:
    """Row-normalised colours (recall per true class) with the raw counts written in each cell."""
    counts = np.asarray(confusion, dtype=np.int64)
    support = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, support, out=np.zeros(counts.shape, dtype=np.float64), where=support > 0)
    size = max(4.0, 0.6 * len(labels) + 2.0)
    figure = Figure(figsize=(size + 1.0, size))
    axes = figure.subplots()
    image = axes.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels)
    axes.set(xlabel="predicted", ylabel="true", title=title)
    for row in range(counts.shape[0]):
        for column in range(counts.shape[1]):
            colour = "white" if share[row, column] > 0.5 else "black"
            axes.text(column, row, str(counts[row, column]), ha="center", va="center", color=colour, fontsize=8)
    return save_png(figure, path)
