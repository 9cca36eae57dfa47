"""An artifact directory as the runtime sees it: ``manifest.json`` read, every file checked against it.

The check runs before any model file is opened: an artifact with a file missing or changed since
export (a truncated copy, a swapped graph) is refused with every bad file named. This module is the
lowest layer of lexiedge: the export stage hashes files with :func:`sha256_file` from here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lexiedge.runtime.errors import ArtifactError, ArtifactIntegrityError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "lexiedge-artifact"
SUPPORTED_FORMAT_VERSIONS = (1,)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (model weights do not fit in memory twice)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A checked artifact directory: its manifest and where its files are."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.manifest.get("task", ""))

    @property
    def target(self) -> str:
        return str(self.manifest.get("target", ""))

    @property
    def runtime(self) -> dict[str, Any]:
        return self.manifest.get("runtime") or {}

    def path(self, name: str) -> Path:
        """A file the runtime will open; it must be one the manifest lists (and so was checked)."""
        if name not in self.manifest.get("files", {}):
            raise ArtifactError(f"{self.directory}: manifest.json does not list {name!r}, refusing to load it")
        return self.directory / name


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of an artifact directory, or an :class:`ArtifactError` saying what is missing."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no such artifact directory (expected one written by `lexiedge export`)")
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory}: no {MANIFEST}; not an artifact written by `lexiedge export`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{path}: not a lexiedge manifest (expected \"format\": \"{MANIFEST_FORMAT}\")")
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ArtifactError(
            f"{path}: manifest format_version {version!r}; this runtime reads {list(SUPPORTED_FORMAT_VERSIONS)}"
        )
    if not isinstance(manifest.get("files"), dict) or not manifest["files"]:
        raise ArtifactError(f"{path}: the manifest lists no files with their sha256; refusing an unverifiable artifact")
    return manifest


def integrity_problems(directory: Path, manifest: dict[str, Any]) -> list[str]:
    """One ``"<file>: <what>"`` line per file that is missing or whose sha256 differs from the manifest."""
    problems = []
    for name, expected in sorted(manifest["files"].items()):
        path = directory / name
        wanted = expected.get("sha256") if isinstance(expected, dict) else None
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif not wanted:
            problems.append(f"{name}: no sha256 in the manifest")
        elif (actual := sha256_file(path)) != wanted:
            problems.append(f"{name}: sha256 mismatch (expected {wanted[:12]}..., got {actual[:12]}...)")
    return problems


def open_artifact(directory: Path | str) -> Artifact:
    """Read the manifest and check every file's sha256; refuse the artifact on any difference."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    problems = integrity_problems(directory, manifest)
    if problems:
        raise ArtifactIntegrityError(str(directory), problems)
    return Artifact(directory, manifest)
