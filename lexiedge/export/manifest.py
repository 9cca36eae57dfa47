"""An artifact's ``manifest.json`` as the export stage writes it: the exporter's sections, then what every
artifact has (the source run, the library versions, the size and the sha256 of every file).

The format's name, version and file name are the runtime's (:mod:`lexiedge_runtime.manifest`): the
reader and the writer share one definition. Exporter plugins write their part with
:func:`update_manifest`; :func:`finalize_manifest` adds the rest and hashes the files last.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexiedge import atomic
from lexiedge.export.errors import ExportError
from lexiedge.rundir import find_checkpoint
from lexiedge.runtime.artifact import sha256_file  # the runtime checks these hashes: one helper for both
from lexiedge.runtime.manifest import MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, ManifestError
from lexiedge_runtime.tasks.schema import check_manifest_schema

if TYPE_CHECKING:
    from lexiedge.export.steps import ExportStep

# libraries whose versions decide what an artifact contains and how it runs
VERSIONED_PACKAGES = (
    "lexiedge",
    "torch",
    "transformers",
    "onnx",
    "onnxruntime",
    "onnxruntime-genai",
    "executorch",
    "ai-edge-litert",
    "numpy",
)

__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "VERSIONED_PACKAGES",
    "dynamic_axes",
    "file_table",
    "finalize_manifest",
    "library_versions",
    "read_manifest",
    "update_manifest",
    "verify_files",
    "write_manifest",
]


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
                raise ExportError(
                    f"the exporter left a symbolic link {link!r} in {directory}; artifacts hold "
                    "regular files only (the runtime refuses links)"
                )
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


def dynamic_axes(signature: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, str]]:
    """The manifest's ``dynamic_axes``: ``{tensor: {axis: name}}`` for every axis of ``signature`` (its
    ``inputs`` and ``outputs``, each ``{"name", "dtype", "shape"}``) that is not a fixed number."""
    axes: dict[str, dict[str, str]] = {}
    for value in [*signature["inputs"], *signature["outputs"]]:
        named = {str(i): str(dim) for i, dim in enumerate(value["shape"]) if not isinstance(dim, int)}
        if named:
            axes[value["name"]] = named
    return axes


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
        "training": _training_summary(planned),
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
    _check_schema(manifest, planned)
    write_manifest(directory, manifest)
    return manifest


TRAINING_KEYS = ("epochs", "max_steps", "seed", "lr")  # the recipe's numbers a model card states


def _training_summary(planned: ExportStep) -> dict[str, Any]:
    """How the source run was trained, as its profile says (trainer, the numbers above, the data it read):
    provenance for the model card (lexiedge.export.card)."""
    from lexiedge.rundir import recorded_data_path

    entry = planned.profile.model(planned.model_key)
    settings = entry.train.settings
    values = settings.model_dump(mode="json") if hasattr(settings, "model_dump") else {}
    data = recorded_data_path(planned.run_dir)
    return {
        "trainer": entry.train.plugin,
        **{key: values[key] for key in TRAINING_KEYS if values.get(key) is not None},
        "data_plugin": entry.data.plugin,
        "data": str(data) if data is not None else None,
    }


def _check_schema(manifest: dict[str, Any], planned: ExportStep) -> None:
    """Refuse a manifest the runtimes would refuse (the task's typed section, lexiedge_runtime.tasks.schema):
    an exporter's mistake shows here, at export, not in an app."""
    try:
        check_manifest_schema(manifest, f"{planned.target} export")
    except ManifestError as exc:
        raise ExportError(
            f"{exc}; the {planned.target} exporter wrote a manifest the runtime cannot read"
        ) from None


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
