"""How an export is shown: sizes in decimal units and the one line of numbers that decided it."""

from __future__ import annotations

from typing import Any


def verification_summary(report: dict[str, Any]) -> str:
    """One line of the numbers that decided an export: max |logit diff|, agreement on the decisive
    samples (near-ties apart) and the task metric before and after, from the manifest's verification."""
    numbers = report.get("validation", report)  # classifiers report per split; LLMs at the top
    parts = []
    diffs = [v for v in (numbers.get("max_abs_diff") or {}).values() if isinstance(v, (int, float))]
    if diffs:
        parts.append(f"max |logit diff| {max(diffs):.2g}")
    decisive, near_ties = numbers.get("decisive") or {}, numbers.get("near_ties") or {}
    if isinstance(decisive.get("agreement"), (int, float)):
        what = "top-1" if "validation" in report else "tokens"
        parts.append(
            f"{what} {decisive['agreement']:.1%} on {decisive['samples']} decisive "
            f"({near_ties.get('samples', 0)} near-ties, {near_ties.get('flips', 0)} flipped)"
        )
    metric = numbers.get("task_metric") or {}
    if isinstance(metric.get("artifact"), (int, float)):
        parts.append(f"{metric['name'].upper()} {metric['pytorch']:.3f} -> {metric['artifact']:.3f}")
    return ", ".join(parts) or ("passed" if report.get("passed") else "-")


def human_size(size: float) -> str:
    """Decimal units (1 MB = 10^6 bytes), as the export table and the demo report print sizes."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1000
    return f"{size} B"
