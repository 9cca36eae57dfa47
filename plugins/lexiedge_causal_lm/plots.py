"""The LoRA run's learning curves as a PNG (``curves.png``, like the classifier's): loss and perplexity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from lexiedge.figures import save_png


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(row["step"], row[key]) for row in history if isinstance(row.get(key), (int, float))]
    return [step for step, _ in points], [value for _, value in points]


def plot_lm_curves(history: list[dict[str, Any]], path: Path) -> Path:
    """Loss on answer tokens (left: train dashed, validation solid) and validation perplexity (right, log
    scale) at each evaluation's optimizer step."""
    figure = Figure(figsize=(11, 4))
    loss_axes, perplexity_axes = figure.subplots(1, 2)
    for split, style in (("train", "--"), ("val", "-")):
        steps, values = _series(history, f"{split}/loss")
        if values:
            loss_axes.plot(steps, values, style, marker="o", markersize=3, label=f"{split} loss")
    steps, values = _series(history, "val/perplexity")
    if values:
        perplexity_axes.plot(steps, values, "-", color="tab:green", marker="o", markersize=3, label="val perplexity")
        perplexity_axes.set_yscale("log")
    loss_axes.set(title="loss (answer tokens)", xlabel="optimizer step", ylabel="cross-entropy")
    perplexity_axes.set(title="validation perplexity", xlabel="optimizer step", ylabel="perplexity (log)")
    for axes in (loss_axes, perplexity_axes):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    return save_png(figure, path)
