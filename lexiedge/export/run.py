"""Running the planned steps: merges first, then each export into its temporary folder, verified, finished
and published (:mod:`lexiedge.export.publish`); the first failure stops the rest."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexiedge.api import ExportJob
from lexiedge.errors import DiskFullError, is_disk_full
from lexiedge.export.card import write_card
from lexiedge.export.errors import VerificationError
from lexiedge.export.manifest import finalize_manifest
from lexiedge.export.merge import MergeStep, merge_stage, merge_steps
from lexiedge.export.publish import keep_rejected, publish, temp_dir_for
from lexiedge.export.report import human_size
from lexiedge.export.steps import ExportRequest, ExportStep, check_output_dir, export_steps
from lexiedge.rundir import recorded_data_path

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class ExportResult:
    model_key: str
    target: str
    out_dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)


def export(request: ExportRequest, console: Console) -> list[ExportResult]:
    """List every step (merges, then exports), show them, then run them one by one (the first
    failure stops the rest)."""
    planned = export_steps(request)
    merges = merge_steps(planned)
    _show_steps(merges, planned, console)
    for merge in merges:
        if not merge.reuse:
            merge_stage(merge.run_dir, merge.out_dir, console)
    return [export_run(item, console, force=request.force, data=request.data) for item in planned]


def export_run(
    planned: ExportStep, console: Console, *, force: bool = False, data: Path | None = None
) -> ExportResult:
    """Export one run to one target: temp dir, exporter, verification, manifest, then rename."""
    out_dir = planned.out_dir
    check_output_dir(out_dir, planned.run_dir, force=force)
    try:
        tmp = temp_dir_for(out_dir)
    except OSError as exc:
        disk_full = _as_disk_full(exc, planned, out_dir)
        if disk_full is None:
            raise
        raise disk_full from exc
    job = _job(planned, tmp, console, data)
    console.print(f"[bold]export[/] {planned.model_key} ({planned.run_dir}) -> {planned.target}: {out_dir}")
    try:
        planned.exporter.export(job)
        manifest = finalize_manifest(tmp, planned)
        write_card(tmp, manifest)  # after the manifest (the card is rendered from it), before the rename
    except VerificationError as exc:
        exc.saved_path = _keep_rejected(tmp, out_dir, planned)
        raise
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written stays, whatever stopped the export
        disk_full = _as_disk_full(exc, planned, out_dir) if isinstance(exc, Exception) else None
        if disk_full is not None:
            raise disk_full from exc
        raise
    publish(tmp, out_dir)
    console.print(f"[green]exported[/] {out_dir} ({human_size(manifest['size_bytes'])})")
    return ExportResult(planned.model_key, planned.target, out_dir, manifest)


def _job(planned: ExportStep, tmp: Path, console: Console, data: Path | None) -> ExportJob:
    """What the exporter plugin is handed: the run, its profile entry and model plugin, the temp folder."""
    from lexiedge.plugin import get_host

    entry = planned.profile.model(planned.model_key)
    return ExportJob(
        profile=planned.profile,
        model_key=planned.model_key,
        entry=entry,
        model_plugin=get_host().models.get(entry.model.plugin),
        run_dir=planned.run_dir,
        out_dir=tmp,
        settings=planned.settings,
        console=console,
        data_path=data if data is not None else recorded_data_path(planned.run_dir),
        target=planned.target,
    )


def _keep_rejected(tmp: Path, out_dir: Path, planned: ExportStep) -> Path:
    """The rejected artifact, finished as far as it goes, moved to ``<out>.failed`` for inspection."""
    with contextlib.suppress(Exception):  # the numbers in the partial manifest matter more than the hashes
        write_card(tmp, finalize_manifest(tmp, planned))
    return keep_rejected(tmp, out_dir)


def _show_steps(merges: list[MergeStep], planned: list[ExportStep], console: Console) -> None:
    steps = [f"merge {m.run_dir} -> {m.out_dir}" + (" (done: reused)" if m.reuse else "") for m in merges]
    steps += [f"export {p.model_key} ({p.run_dir}) -> {p.target}: {p.out_dir}" for p in planned]
    if len(steps) > 1:
        console.print(
            "[bold]steps[/]: " + "; ".join(f"{number}. {step}" for number, step in enumerate(steps, 1)),
            soft_wrap=True,
        )


def _as_disk_full(exc: Exception, planned: ExportStep, out_dir: Path) -> DiskFullError | None:
    """One line for an export that ran out of space (an OSError, or a converter's RuntimeError); else None."""
    if not is_disk_full(exc):
        return None
    kept = f"; {out_dir} is unchanged" if out_dir.exists() else ""
    return DiskFullError(
        f"no space left on the disk while exporting {planned.model_key} to {planned.target} ({out_dir}): the "
        f"partial artifact was removed{kept}; free some space (the temp folder's disk too) and export again"
    )
