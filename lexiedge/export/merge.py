"""The merge stage: an adapter-trained run's adapter folded into its base model, before any export.

Exporters of such a run start from ``RUN/merged`` (what `lexiedge merge` writes); an existing merge is
reused, so merging is a step of its own that `lexiedge export` shows, not a side effect of an exporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexiedge.export.steps import ExportStep, check_run_has_weights
from lexiedge.rundir import is_merged_model, load_run_profile, merged_dir, run_lock

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class MergeStep:
    """The merge one adapter-trained run needs before its exports."""

    model_key: str
    run_dir: Path
    out_dir: Path
    reuse: bool  # RUN/merged is already there


def merge_steps(planned: list[ExportStep]) -> list[MergeStep]:
    """One merge step per adapter-trained run (a model plugin with ``supports_merge``) among the exports."""
    from lexiedge.plugin import get_host

    host = get_host()
    merges: dict[Path, MergeStep] = {}
    for item in planned:
        plugin = host.models.get_class(item.profile.model(item.model_key).model.plugin)
        if plugin.supports_merge and item.run_dir not in merges:
            out = merged_dir(item.run_dir)
            merges[item.run_dir] = MergeStep(item.model_key, item.run_dir, out, reuse=is_merged_model(out))
    return list(merges.values())


def merge_stage(run_dir: Path, out_dir: Path, console: Console) -> dict[str, Any]:
    """The merge stage (`lexiedge merge`, or a planned step of `lexiedge export`): the model plugin folds
    the run's adapter into its base in ``out_dir``, while holding the run's lock (no trainer is still
    writing the adapter)."""
    from lexiedge.plugin import get_host

    profile, key = load_run_profile(run_dir)
    plugin = get_host().models.get(profile.model(key).model.plugin)
    if not plugin.supports_merge:  # the model's own refusal says more than a missing checkpoint would
        return plugin.merge(run_dir, out_dir, console)
    with run_lock(run_dir):
        check_run_has_weights(run_dir, profile, key, action="merge")  # weights training vouched for, or none
        return plugin.merge(run_dir, out_dir, console)
