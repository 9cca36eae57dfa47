"""The export stage: a run directory -> one verified, self-describing artifact directory per target.

    lexiedge export --target onnx --run runs/cpu/emotion-av/20250101-120000
    lexiedge export --profile cpu                 # every target each model's profile lists, newest runs

Every bad input is refused before any work starts (a missing run, a run without weights, an unknown
target, a target the model's task does not support, an existing output directory without --force).
Each artifact is written into a temporary sibling directory and renamed into place only after it
passed verification, so ``artifacts/<model>/<target>/`` is always either the old artifact or the
new, complete one. An artifact that fails verification is kept for inspection at
``<out>.failed/`` and the error names it.

Exporter plugins write the model files and a partial ``manifest.json`` (signature, labels,
preprocessing, verification numbers, their settings); this module adds what every artifact has:
the source run, the library versions, the size and the sha256 of every file.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import platform
import shutil
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lexiedge import atomic
from lexiedge.api import ExporterPlugin, ExportJob, PluginSettings
from lexiedge.errors import DiskFullError, LexiedgeError, ProfileError, UsageError, is_disk_full
from lexiedge.rundir import (
    find_checkpoint,
    has_mergeable_weights,
    is_merged_model,
    load_run_profile,
    merged_dir,
    newest_run,
    newest_runs,
    recorded_data_path,
    run_lock,
)
from lexiedge.runtime.artifact import sha256_file  # the runtime checks these hashes: one helper for both

if TYPE_CHECKING:
    from rich.console import Console

    from lexiedge.profile import Profile

ARTIFACTS_DIR = Path("artifacts")
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "lexiedge-artifact"
MANIFEST_VERSION = 1
# libraries whose versions decide what an artifact contains and how it runs
VERSIONED_PACKAGES = ("lexiedge", "torch", "transformers", "onnx", "onnxruntime", "onnxruntime-genai", "numpy")


# --- errors ------------------------------------------------------------------------------------


class ExportError(LexiedgeError):
    """An export that could not be produced (a converter failed, a model cannot be traced, ...)."""


class VerificationError(ExportError):
    """An artifact whose outputs do not match the source model's (optimum's ValidationError).

    The message names the target, the output, what was measured against which threshold, and the
    directory where the rejected artifact was kept (set by :func:`export_run` once it is moved).
    """

    kind = "verification failed"

    def __init__(self, target: str, output: str, detail: str, *, saved_path: Path | None = None) -> None:
        self.target = target
        self.output = output
        self.detail = detail
        self.saved_path = saved_path
        super().__init__(self._message())

    @property
    def reason(self) -> str:
        """What failed, without the target and the saved path (the manifest's ``verification.failure``)."""
        return f"{self.kind} for output {self.output!r}: {self.detail}"

    def _message(self) -> str:
        where = f"; the rejected artifact is in {self.saved_path}" if self.saved_path else ""
        return f"{self.target} export: {self.reason}{where}"

    def __str__(self) -> str:  # saved_path is set after construction
        return self._message()


class ShapeError(VerificationError):
    """The artifact fails (or returns the wrong shape) at input shapes other than the trace's."""

    kind = "shape check failed"


class AtolError(VerificationError):
    """An output differs from the source model's by more than the target's tolerance."""

    kind = "values differ"


class AgreementError(VerificationError):
    """Top-1 (classifier) or greedy-token (LLM) agreement below the target's threshold."""

    kind = "agreement too low"


# --- what gets exported -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRequest:
    """What `lexiedge export` was asked for (the CLI's options, unchanged)."""

    targets: tuple[str, ...] = ()  # empty: the targets each model's profile lists
    profile: str | None = None  # newest runs of this profile; its export section wins over the run's
    run: Path | None = None
    model: str | None = None  # with --profile: one model of it
    out: Path | None = None
    force: bool = False
    overrides: tuple[str, ...] = ()  # --set on the profile (export options included)
    data: Path | None = None  # verification/calibration data when the run's recorded data moved
    runs_dir: Path = Path("runs")
    artifacts_dir: Path = ARTIFACTS_DIR


@dataclass(frozen=True)
class ExportStep:
    """One (run, target) pair, checked and ready: nothing has been written yet."""

    model_key: str
    run_dir: Path
    target: str
    out_dir: Path
    profile: "Profile"  # the run's profile, with the export section of --profile when given
    exporter: ExporterPlugin
    settings: PluginSettings


@dataclass(frozen=True)
class MergeStep:
    """The merge an adapter-trained run needs before any export: its adapter folded into the base model.

    Exporters of such a run start from ``RUN/merged`` (what `lexiedge merge` writes); an existing merge is
    reused, so merging is a stage of its own that the export shows as a step, not a side effect of an exporter.
    """

    model_key: str
    run_dir: Path
    out_dir: Path
    reuse: bool  # RUN/merged is already there


@dataclass
class ExportResult:
    model_key: str
    target: str
    out_dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)


def default_artifact_dir(model_key: str, target: str, artifacts_dir: Path = ARTIFACTS_DIR) -> Path:
    return artifacts_dir / model_key / target


def export_steps(request: ExportRequest) -> list[ExportStep]:
    """Resolve runs, targets, settings and output directories; refuse bad input before any work."""
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    recorded: dict[Path, tuple[Profile, str]] = {}

    def run_profile(run_dir: Path) -> tuple[Profile, str]:  # each run's profile.yaml is read and validated once
        if run_dir not in recorded:
            recorded[run_dir] = load_run_profile(run_dir)
        return recorded[run_dir]

    for target in request.targets:
        get_host().exporters.get(target)  # an unknown target lists the known ones, before anything else
    if request.data is not None and not request.data.exists():
        raise UsageError(f"--data {request.data}: no such file or folder (the data to verify the export on)")
    chosen = (
        load_profile(request.profile, list(request.overrides), host=get_host()) if request.profile else None
    )
    runs: list[tuple[str, Path]] = []
    if request.run is not None:
        _, model_key = run_profile(request.run)
        runs.append((model_key, request.run))
    elif chosen is not None:
        keys = [request.model] if request.model else list(chosen.models)
        for key in keys:
            chosen.model(key)  # an unknown --model lists the profile's models
            runs.append((key, newest_run(chosen.name, key, request.runs_dir)))
    else:  # neither --run nor --profile: the newest run of each model, whatever its profile
        found = newest_runs(request.runs_dir)
        if request.model is not None:
            if request.model not in found:
                raise UsageError(f"no run of {request.model!r} under {request.runs_dir}; train one first or pass --run")
            found = {request.model: found[request.model]}
        if not found:
            raise UsageError(f"no runs under {request.runs_dir}; train one first, or pass --run RUN_DIR or --profile P")
        runs = sorted(found.items())
        if request.targets:  # only the models the asked targets can export
            supported = [(key, run) for key, run in runs if _supports(request.targets, *run_profile(run))]
            if not supported:
                raise UsageError(
                    f"no run under {request.runs_dir} of a model that {', '.join(request.targets)} can export"
                )
            runs = supported

    planned: list[ExportStep] = []
    for model_key, run_dir in runs:
        trained, _ = run_profile(run_dir)
        if chosen is not None and model_key in chosen.models:
            profile = _with_export_section(trained, model_key, chosen)
        elif request.overrides:
            from lexiedge.profile import apply_overrides, validate_profile

            profile = validate_profile(
                apply_overrides(trained.raw, list(request.overrides)), trained.source, host=get_host()
            )
        else:
            profile = trained
        entry = profile.model(model_key)
        targets = list(dict.fromkeys(request.targets or entry.export.targets))  # a repeated target once
        if not targets:
            raise UsageError(
                f"no export target for {model_key!r}: pass --target or list targets under "
                f"models.{model_key}.export.targets in the profile"
            )
        for target in targets:
            exporter = _exporter_for(target, model_key, entry.model.plugin)
            settings = _target_settings(profile, model_key, target, exporter)
            planned.append(
                ExportStep(model_key, run_dir, target, Path(), profile, exporter, settings)  # out set below
            )
    outs = _output_dirs(planned, request)
    planned = [replace(p, out_dir=out) for p, out in zip(planned, outs)]
    for item in planned:
        check_run_has_weights(item.run_dir, item.profile, item.model_key)
        check_output_dir(item.out_dir, item.run_dir, force=request.force)
    return planned


def export(request: ExportRequest, console: "Console") -> list[ExportResult]:
    """List every step (merges, then exports), show them, then run them one by one (the first
    failure stops the rest)."""
    planned = export_steps(request)
    merges = merge_steps(planned)
    _show_steps(merges, planned, console)
    for merge in merges:
        if not merge.reuse:
            merge_run(merge.run_dir, merge.out_dir, console)
    return [export_run(item, console, force=request.force, data=request.data) for item in planned]


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


def merge_run(run_dir: Path, out_dir: Path, console: "Console") -> dict[str, Any]:
    """The merge stage (`lexiedge merge`, or a planned step of `lexiedge export`): the model plugin folds
    the run's adapter into its base in ``out_dir``, while holding the run's lock (no trainer is still
    writing the adapter)."""
    from lexiedge.plugin import get_host

    profile, key = load_run_profile(run_dir)
    plugin = get_host().models.get(profile.model(key).model.plugin)
    with run_lock(run_dir):
        return plugin.merge(run_dir, out_dir, console)


def _show_steps(merges: list[MergeStep], planned: list[ExportStep], console: "Console") -> None:
    steps = [f"merge {m.run_dir} -> {m.out_dir}" + (" (done: reused)" if m.reuse else "") for m in merges]
    steps += [f"export {p.model_key} ({p.run_dir}) -> {p.target}: {p.out_dir}" for p in planned]
    if len(steps) > 1:
        console.print("[bold]steps[/]: " + "; ".join(f"{number}. {step}" for number, step in enumerate(steps, 1)),
                      soft_wrap=True)


def export_run(planned: ExportStep, console: "Console", *, force: bool = False, data: Path | None = None) -> ExportResult:
    """Export one run to one target: temp dir, exporter, verification, manifest, then rename."""
    from lexiedge.plugin import get_host

    out_dir = planned.out_dir
    check_output_dir(out_dir, planned.run_dir, force=force)
    entry = planned.profile.model(planned.model_key)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise _as_disk_full(exc, planned, out_dir) or exc
    job = ExportJob(
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
    console.print(f"[bold]export[/] {planned.model_key} ({planned.run_dir}) -> {planned.target}: {out_dir}")
    try:
        planned.exporter.export(job)
        manifest = finalize_manifest(tmp, planned)
    except VerificationError as exc:
        exc.saved_path = _keep_rejected(tmp, out_dir, planned)
        raise
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written stays, whatever stopped the export
        disk_full = _as_disk_full(exc, planned, out_dir) if isinstance(exc, Exception) else None
        if disk_full is not None:
            raise disk_full from exc
        raise
    _publish(tmp, out_dir)
    console.print(f"[green]exported[/] {out_dir} ({human_size(manifest['size_bytes'])})")
    return ExportResult(planned.model_key, planned.target, out_dir, manifest)


def _as_disk_full(exc: Exception, planned: ExportStep, out_dir: Path) -> DiskFullError | None:
    """One line for an export that ran out of space (an OSError, or a converter's RuntimeError); else None."""
    if not is_disk_full(exc):
        return None
    kept = f"; {out_dir} is unchanged" if out_dir.exists() else ""
    return DiskFullError(
        f"no space left on the disk while exporting {planned.model_key} to {planned.target} ({out_dir}): the "
        f"partial artifact was removed{kept}; free some space (the temp folder's disk too) and export again"
    )


# --- checks --------------------------------------------------------------------------------------


def _exporter_for(target: str, model_key: str, model_plugin: str) -> ExporterPlugin:
    from lexiedge.plugin import get_host

    host = get_host()
    exporter = host.exporters.get(target)  # an unknown target lists the known ones
    task = host.models.get_class(model_plugin).task
    if task not in exporter.tasks:
        serving = [name for name in host.exporters.names() if task in host.exporters.get_class(name).tasks]
        raise UsageError(
            f"target {target!r} does not support model {model_key!r} (task {task}); "
            f"targets for it: {', '.join(serving) or 'none installed'}"
        )
    return exporter


def _supports(targets: tuple[str, ...], profile: "Profile", key: str) -> bool:
    """Whether every target serves the task of the run's model."""
    from lexiedge.plugin import get_host

    task = profile.model(key).task  # set when the profile was validated
    return all(task in get_host().exporters.get_class(target).tasks for target in targets)


def _target_settings(profile: "Profile", model_key: str, target: str, exporter: ExporterPlugin) -> PluginSettings:
    raw = profile.model(model_key).export.options.get(target) or {}
    prefix = f"models.{model_key}.export.options.{target}"
    try:
        return exporter.Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join([prefix, *(str(part) for part in first["loc"])])
        if first["type"] == "extra_forbidden":
            known = ", ".join(exporter.Settings.model_fields)
            raise ProfileError(profile.source, key, f"unknown key; {target} takes: {known}") from None
        raise ProfileError(profile.source, key, f"{first['msg']}, got {first.get('input')!r}") from None


def _with_export_section(run_profile: "Profile", model_key: str, chosen: "Profile") -> "Profile":
    """The run's profile (what was trained) with the export section of the profile given now."""
    from lexiedge.plugin import get_host
    from lexiedge.profile import validate_profile

    raw = copy.deepcopy(run_profile.raw)
    export_section = chosen.raw["models"][model_key].get("export")
    if export_section is None:
        raw["models"][model_key].pop("export", None)
    else:
        raw["models"][model_key]["export"] = export_section
    return validate_profile(raw, run_profile.source, host=get_host())


def _output_dirs(planned: list[ExportStep], request: ExportRequest) -> list[Path]:
    """--out is the artifact itself for one export, else the parent of <model>/<target>."""
    if request.out is None:
        return [default_artifact_dir(p.model_key, p.target, request.artifacts_dir) for p in planned]
    if len(planned) == 1:
        return [request.out]
    return [request.out / p.model_key / p.target for p in planned]


def check_output_dir(out_dir: Path, run_dir: Path, *, force: bool) -> None:
    """Refuse an output that is a file, that would replace the run it exports, or that exists without --force."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file; the artifact needs a directory (pass another --out)")
    resolved, run = out_dir.resolve(), run_dir.resolve()
    if resolved == run or resolved in run.parents:
        raise UsageError(f"{out_dir} holds the run {run_dir} being exported; pass an --out outside it")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise UsageError(f"{out_dir} exists; pass --force to replace it (or --out for another directory)")


def check_run_has_weights(run_dir: Path, profile: "Profile", model_key: str) -> None:
    """A run without weights (training never saved, or was interrupted) cannot be exported; nor can
    weights that no longer match the checksum training recorded for them."""
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is not None:
        _check_checksums(checkpoint)
        return
    from lexiedge.plugin import get_host

    plugin = get_host().models.get_class(profile.model(model_key).model.plugin)
    if plugin.supports_merge and has_mergeable_weights(run_dir):
        return
    raise UsageError(
        f"{run_dir} has no checkpoint (checkpoints/best/model.safetensors or final/model.safetensors); "
        "finish the training or --resume it first"
    )


def _check_checksums(checkpoint: Path) -> None:
    """Refuse weights whose ``checksums.json`` says they changed (runs without one predate checksums)."""
    from lexiedge.train.checkpoint import CHECKSUMS, checkpoint_problems

    if not (checkpoint / CHECKSUMS).is_file():
        return
    problems = checkpoint_problems(checkpoint)
    if problems:
        raise UsageError(
            f"{checkpoint} is damaged ({'; '.join(problems)}); refusing to export it: restore the file or "
            "train the run again"
        )


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
        parts.append(f"{what} {decisive['agreement']:.1%} on {decisive['samples']} decisive "
                     f"({near_ties.get('samples', 0)} near-ties, {near_ties.get('flips', 0)} flipped)")
    metric = numbers.get("task_metric") or {}
    if isinstance(metric.get("artifact"), (int, float)):
        parts.append(f"{metric['name'].upper()} {metric['pytorch']:.3f} -> {metric['artifact']:.3f}")
    return ", ".join(parts) or ("passed" if report.get("passed") else "-")


# --- manifest ------------------------------------------------------------------------------------


def file_table(directory: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under ``directory`` except the manifest itself.

    A symbolic link is refused: the runtime refuses artifacts with links (they could point anywhere).
    """
    table: dict[str, dict[str, Any]] = {}
    found: list[Path] = []
    for root, folders, names in os.walk(directory, followlinks=False):
        for name in [*folders, *names]:
            if os.path.islink(os.path.join(root, name)):
                link = Path(root, name).relative_to(directory).as_posix()
                raise ExportError(f"the exporter left a symbolic link {link!r} in {directory}; artifacts hold "
                                  "regular files only (the runtime refuses links)")
        found += [Path(root, name) for name in names]
    for path in sorted(found):
        relative = path.relative_to(directory).as_posix()
        if relative == MANIFEST:
            continue
        table[relative] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return table


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` whole or not at all."""
    atomic.write_json(directory / MANIFEST, manifest)


def update_manifest(directory: Path, **sections: Any) -> dict[str, Any]:
    """Merge top-level ``sections`` into the (partial) manifest an exporter is writing."""
    manifest = read_manifest(directory)
    manifest.update(sections)
    write_manifest(directory, manifest)
    return manifest


def finalize_manifest(directory: Path, planned: ExportStep) -> dict[str, Any]:
    """Add the fields every artifact has to the exporter's manifest; hash the files last."""
    from lexiedge import __version__

    exporter_part = read_manifest(directory)
    entry = planned.profile.model(planned.model_key)
    checkpoint = find_checkpoint(planned.run_dir)
    source = {
        "run": str(planned.run_dir.resolve()),
        "profile": planned.profile.name,
        "checkpoint": str(checkpoint.relative_to(planned.run_dir)) if checkpoint else None,
        **exporter_part.pop("source", {}),
    }
    files = file_table(directory)
    model_bytes = exporter_part.pop("model_files", None)
    size = sum(files[name]["bytes"] for name in (model_bytes or files) if name in files)
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "model": planned.model_key,
        "model_plugin": entry.model.plugin,
        "task": _task_of(entry.model.plugin),
        "target": planned.target,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "lexiedge_version": __version__,
        "settings": planned.settings.model_dump(mode="json"),
        **exporter_part,
        "source": source,
        "size_bytes": size,
        "model_files": sorted(model_bytes) if model_bytes else sorted(files),
        "versions": library_versions(),
        "files": files,
    }
    write_manifest(directory, manifest)
    return manifest


def verify_files(directory: Path) -> list[str]:
    """Files whose sha256 no longer matches the manifest (the runtime refuses such an artifact)."""
    manifest = read_manifest(directory)
    problems = []
    for name, expected in manifest.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{name}: sha256 mismatch")
    return problems


def _task_of(model_plugin: str) -> str:
    from lexiedge.plugin import get_host

    return get_host().models.get_class(model_plugin).task


# --- publishing ------------------------------------------------------------------------------------


def _publish(tmp: Path, out_dir: Path) -> None:
    """Swap the finished artifact in; the old one (--force) is removed only after the swap."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _keep_rejected(tmp: Path, out_dir: Path, planned: ExportStep) -> Path:
    """Move an artifact that failed verification next to the real one, for inspection."""
    rejected = out_dir.parent / f"{out_dir.name}.failed"
    try:
        finalize_manifest(tmp, planned)
    except Exception:  # the numbers in the partial manifest matter more than the hashes
        pass
    shutil.rmtree(rejected, ignore_errors=True)
    os.replace(tmp, rejected)
    return rejected


def human_size(size: float) -> str:
    """Decimal units (1 MB = 10^6 bytes), as the export table and the demo report print sizes."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1000
    return f"{size} B"
