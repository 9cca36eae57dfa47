"""What `lexiedge export` will do, resolved and checked before anything is written.

:func:`export_steps` turns an :class:`ExportRequest` (the CLI's options) into one :class:`ExportStep`
per (run, target): which runs (``--run``, the newest runs of ``--profile``, or the newest run of each
model), which profile (the run's own, with the export section of ``--profile`` or ``--set``), which
targets and settings, which output folder. Every bad input is refused here, before any work starts:
a missing run, a run without weights, an unknown target, a target the model's task does not support,
an output folder that is a file, holds the run, or exists without ``--force`` (which replaces only an
artifact folder: one with a ``manifest.json``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from lexiedge.api import ExporterPlugin, PluginSettings
from lexiedge.errors import ProfileError, UsageError
from lexiedge.rundir import find_checkpoint, has_mergeable_weights, load_run_profile, newest_run, newest_runs
from lexiedge.runtime.manifest import MANIFEST

if TYPE_CHECKING:
    from lexiedge.profile import Profile

ARTIFACTS_DIR = Path("artifacts")


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
    profile: Profile  # the run's profile, with the export section of --profile when given
    exporter: ExporterPlugin
    settings: PluginSettings


def default_artifact_dir(model_key: str, target: str, artifacts_dir: Path = ARTIFACTS_DIR) -> Path:
    return artifacts_dir / model_key / target


def export_steps(request: ExportRequest) -> list[ExportStep]:
    """Resolve runs, targets, settings and output directories; refuse bad input before any work."""
    _check_request(request)
    chosen = _chosen_profile(request)
    profiles = _RunProfiles()
    runs = _runs_to_export(request, chosen, profiles)
    planned = [
        step
        for model_key, run_dir in runs
        for step in _steps_of_run(request, chosen, profiles.get(run_dir)[0], model_key, run_dir)
    ]
    planned = [replace(step, out_dir=out) for step, out in zip(planned, _output_dirs(planned, request))]
    for step in planned:
        check_run_has_weights(step.run_dir, step.profile, step.model_key)
        check_output_dir(step.out_dir, step.run_dir, force=request.force)
    return planned


# --- the steps, in order ---------------------------------------------------------------------------


class _RunProfiles:
    """Each run's profile.yaml, read and validated once however many targets export it."""

    def __init__(self) -> None:
        self._read: dict[Path, tuple[Profile, str]] = {}

    def get(self, run_dir: Path) -> tuple[Profile, str]:
        if run_dir not in self._read:
            self._read[run_dir] = load_run_profile(run_dir)
        return self._read[run_dir]


def _check_request(request: ExportRequest) -> None:
    """Refuse an unknown target (listing the known ones) and missing --data before anything is read."""
    from lexiedge.plugin import get_host

    for target in request.targets:
        get_host().exporters.get(target)
    if request.data is not None and not request.data.exists():
        raise UsageError(f"--data {request.data}: no such file or folder (the data to verify the export on)")


def _chosen_profile(request: ExportRequest) -> Profile | None:
    """The profile of --profile (with --set), or None."""
    if not request.profile:
        return None
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    return load_profile(request.profile, list(request.overrides), host=get_host())


def _runs_to_export(
    request: ExportRequest, chosen: Profile | None, profiles: _RunProfiles
) -> list[tuple[str, Path]]:
    """(model key, run directory): --run; else the newest run of each model of --profile; else the newest
    run of each model under runs/, whatever its profile."""
    if request.run is not None:
        return [(profiles.get(request.run)[1], request.run)]
    if chosen is not None:
        keys = [request.model] if request.model else list(chosen.models)
        for key in keys:
            chosen.model(key)  # an unknown --model lists the profile's models
        return [(key, newest_run(chosen.name, key, request.runs_dir)) for key in keys]
    return _newest_runs(request, profiles)


def _newest_runs(request: ExportRequest, profiles: _RunProfiles) -> list[tuple[str, Path]]:
    found = newest_runs(request.runs_dir)
    if request.model is not None:
        if request.model not in found:
            raise UsageError(
                f"no run of {request.model!r} under {request.runs_dir}; train one first or pass --run"
            )
        found = {request.model: found[request.model]}
    if not found:
        raise UsageError(
            f"no runs under {request.runs_dir}; train one first, or pass --run RUN_DIR or --profile P"
        )
    runs = sorted(found.items())
    if not request.targets:
        return runs
    supported = [(key, run) for key, run in runs if _supports(request.targets, *profiles.get(run))]
    if not supported:  # only the models the asked targets can export
        raise UsageError(
            f"no run under {request.runs_dir} of a model that {', '.join(request.targets)} can export"
        )
    return supported


def _steps_of_run(
    request: ExportRequest, chosen: Profile | None, trained: Profile, model_key: str, run_dir: Path
) -> list[ExportStep]:
    """One step per target of the run (--target, else the profile's), its output folder still unset."""
    profile = _export_profile(request, chosen, trained, model_key)
    entry = profile.model(model_key)
    targets = list(dict.fromkeys(request.targets or entry.export.targets))  # a repeated target once
    if not targets:
        raise UsageError(
            f"no export target for {model_key!r}: pass --target or list targets under "
            f"models.{model_key}.export.targets in the profile"
        )
    steps = []
    for target in targets:
        exporter = _exporter_for(target, model_key, entry.model.plugin)
        settings = _target_settings(profile, model_key, target, exporter)
        steps.append(ExportStep(model_key, run_dir, target, Path(), profile, exporter, settings))
    return steps


def _export_profile(
    request: ExportRequest, chosen: Profile | None, trained: Profile, model_key: str
) -> Profile:
    """The run's profile (what was trained), with the export section of --profile, or with --set applied."""
    if chosen is not None and model_key in chosen.models:
        return _with_export_section(trained, model_key, chosen)
    if not request.overrides:
        return trained
    from lexiedge.plugin import get_host
    from lexiedge.profile import apply_overrides, validate_profile

    return validate_profile(
        apply_overrides(trained.raw, list(request.overrides)), trained.source, host=get_host()
    )


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


def _supports(targets: tuple[str, ...], profile: Profile, key: str) -> bool:
    """Whether every target serves the task of the run's model."""
    from lexiedge.plugin import get_host

    task = profile.model(key).task  # set when the profile was validated
    return all(task in get_host().exporters.get_class(target).tasks for target in targets)


def _target_settings(
    profile: Profile, model_key: str, target: str, exporter: ExporterPlugin
) -> PluginSettings:
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


def _with_export_section(run_profile: Profile, model_key: str, chosen: Profile) -> Profile:
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


# --- checks ----------------------------------------------------------------------------------------


def check_output_dir(out_dir: Path, run_dir: Path, *, force: bool) -> None:
    """Refuse an output that is a file, that would replace the run it exports, or that exists without --force;
    --force replaces an artifact folder (one with a manifest.json), never a folder of anything else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file; the artifact needs a directory (pass another --out)")
    resolved, run = out_dir.resolve(), run_dir.resolve()
    if resolved == run or resolved in run.parents:
        raise UsageError(f"{out_dir} holds the run {run_dir} being exported; pass an --out outside it")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not force:
        raise UsageError(f"{out_dir} exists; pass --force to replace it (or --out for another directory)")
    if not (out_dir / MANIFEST).is_file():
        raise UsageError(
            f"{out_dir} holds files but no {MANIFEST}, so it is not an artifact: --force replaces only an "
            "artifact folder written by `lexiedge export`; pass another --out (or empty that folder yourself)"
        )


def check_run_has_weights(run_dir: Path, profile: Profile, model_key: str, *, action: str = "export") -> None:
    """A run without weights (training never saved, or was interrupted) cannot be exported; nor can
    weights that no longer match the checksum training recorded for them. ``action`` names the command
    refused (`lexiedge eval` and `lexiedge merge` trust a run's weights on the same terms)."""
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is not None:
        _check_checksums(checkpoint, action)
        return
    from lexiedge.plugin import get_host

    plugin = get_host().models.get_class(profile.model(model_key).model.plugin)
    if plugin.supports_merge and has_mergeable_weights(run_dir):
        return
    raise UsageError(
        f"{run_dir} has no checkpoint (checkpoints/best/model.safetensors or final/model.safetensors); "
        "finish the training or --resume it first"
    )


def _check_checksums(checkpoint: Path, action: str) -> None:
    """Refuse weights whose ``checksums.json`` says they changed (runs without one predate checksums)."""
    from lexiedge.train.checkpoint import CHECKSUMS, checkpoint_problems

    if not (checkpoint / CHECKSUMS).is_file():
        return
    problems = checkpoint_problems(checkpoint)
    if problems:
        raise UsageError(
            f"{checkpoint} is damaged ({'; '.join(problems)}); refusing to {action} it: restore the file or "
            "train the run again"
        )
