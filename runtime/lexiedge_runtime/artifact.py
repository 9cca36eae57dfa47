"""An artifact directory as the runtime sees it: ``manifest.json`` read, validated, every file checked.

Nothing an artifact names is opened before it passed three checks, in this order:

1. the manifest's values and paths (:func:`lexiedge_runtime.manifest.validate_manifest`): every path
   relative, normalised, inside the directory; hashes well formed;
2. the export's verification passed (``verification.passed: true``), unless the caller asks for an
   unverified artifact with ``allow_unverified=True`` (then with an :class:`UnverifiedArtifactWarning`);
3. every listed file is a regular file reached without a symbolic link, and its sha256 matches.

A symlink is refused wherever it sits (``manifest.json``, a listed file, a folder on the way to one):
it could point anywhere, and copying an artifact must copy what was verified. The artifact
directory itself may be reached through a link (``artifacts/current -> v3``). This module is the
lowest layer of lexiedge: the export stage hashes files with :func:`sha256_file` from here.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lexiedge_runtime.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    UnverifiedArtifactError,
    UnverifiedArtifactWarning,
)
from lexiedge_runtime.manifest import MANIFEST, MANIFEST_FORMAT, SUPPORTED_FORMAT_VERSIONS, validate_manifest
# opening with O_NOFOLLOW closes the window between the symlink check and the read where it exists
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
MAX_MANIFEST_BYTES = 16 << 20  # a manifest is a few KB; a bigger one is not ours (and not read into memory)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a regular file, read in 1 MiB blocks; a symbolic link is refused (OSError), never followed."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise IsADirectoryError(f"{path} is not a regular file")
        digest = hashlib.sha256()
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

    @property
    def verified(self) -> bool:
        return (self.manifest.get("verification") or {}).get("passed") is True

    def path(self, name: str) -> Path:
        """A file the runtime will open; it must be one the manifest lists (and so was checked)."""
        # every listed name was checked to lie inside the directory, so a listed name is a confined one
        if name not in self.manifest.get("files", {}):
            raise ArtifactError(f"{self.directory}: manifest.json does not list {name!r}, refusing to load it")
        return self.directory / name


def read_manifest(directory: Path | str) -> dict[str, Any]:
    """The validated manifest of an artifact directory, or an :class:`ArtifactError` saying what is wrong."""
    directory = Path(directory)
    if not directory.exists():
        raise ArtifactError(f"{directory}: no such artifact directory (expected one written by `lexiedge export`)")
    if not directory.is_dir():
        raise ArtifactError(f"{directory} is a file; expected an artifact directory written by `lexiedge export`")
    path = directory / MANIFEST
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: no {MANIFEST}; not an artifact written by `lexiedge export`") from None
    if stat.S_ISLNK(mode):
        raise ArtifactError(f"{path} is a symbolic link; refusing it (an artifact's files must lie inside it)")
    if not stat.S_ISREG(mode):
        raise ArtifactError(f"{path} is not a regular file; not an artifact written by `lexiedge export`")
    manifest = _parse_manifest(path)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{path}: not a lexiedge manifest (expected \"format\": \"{MANIFEST_FORMAT}\")")
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ArtifactError(
            f"{path}: manifest format_version {version!r}; this runtime reads {list(SUPPORTED_FORMAT_VERSIONS)}"
        )
    validate_manifest(manifest, str(directory))
    return manifest


def _parse_manifest(path: Path) -> Any:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ArtifactError(f"{path}: over {MAX_MANIFEST_BYTES >> 20} MiB; not a lexiedge manifest")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # worded so that runtime-js (manifest.js: decodeManifest) says the same
        raise ArtifactError(f"{path}: unreadable manifest (not UTF-8 text at byte {exc.start}); "
                            "expected the UTF-8 JSON `lexiedge export` writes") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc.strerror or type(exc).__name__})") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({str(exc) or type(exc).__name__})") from None


def file_problems(directory: Path, manifest: dict[str, Any]) -> list[str]:
    """One ``"<file>: <what>"`` line per listed file that is missing, a symlink or not a regular file.

    Only ``lstat`` is used: nothing is opened, and nothing a link points at is looked at or named.
    """
    problems = []
    for name in sorted(manifest["files"]):
        current = directory
        for depth, part in enumerate(parts := name.split("/")):
            current = current / part
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                problems.append(f"{name}: missing")
                break
            last = depth == len(parts) - 1
            if stat.S_ISLNK(mode):
                what = name if last else f"{'/'.join(parts[: depth + 1])}/ (on the way to {name})"
                problems.append(f"{what}: a symbolic link, refused (copy the file itself into the artifact)")
                break
            if last and not stat.S_ISREG(mode):
                problems.append(f"{name}: not a regular file")
            elif not last and not stat.S_ISDIR(mode):
                problems.append(f"{name}: missing ({'/'.join(parts[: depth + 1])} is not a directory)")
                break
    return problems


def unlisted_links(directory: Path, manifest: dict[str, Any]) -> list[str]:
    """One line per symbolic link anywhere inside the artifact that the manifest does not list.

    A graph names its external data files itself (``model.onnx.data``); an unlisted link beside it
    could make ONNX Runtime read whatever it points at, so none is allowed, listed or not.
    """
    listed = set(manifest["files"])
    problems = []
    for root, folders, names in os.walk(directory, followlinks=False):
        for name in sorted([*folders, *names]):
            path = Path(root, name)
            relative = path.relative_to(directory).as_posix()
            if path.is_symlink() and relative not in listed:
                problems.append(f"{relative}: a symbolic link inside the artifact, refused (remove it)")
    return problems


def integrity_problems(directory: Path, manifest: dict[str, Any]) -> list[str]:
    """:func:`file_problems` and :func:`unlisted_links`, or else one line per file whose sha256 differs."""
    problems = file_problems(directory, manifest) + unlisted_links(directory, manifest)
    if problems:  # nothing is hashed while any entry is suspect
        return problems
    for name, expected in sorted(manifest["files"].items()):
        wanted = expected["sha256"]
        try:
            actual = sha256_file(directory / name)
        except OSError as exc:  # swapped for a link or removed since the lstat above
            problems.append(f"{name}: unreadable ({exc.strerror or type(exc).__name__})")
            continue
        if actual != wanted:
            problems.append(f"{name}: sha256 mismatch (expected {wanted[:12]}..., got {actual[:12]}...)")
    return problems


def check_verified(directory: Path, manifest: dict[str, Any], *, allow_unverified: bool) -> None:
    """Refuse an artifact whose export verification failed or was never recorded (or warn when allowed)."""
    verification = manifest.get("verification") or {}
    passed = verification.get("passed")
    if passed is True:
        return
    failure = str(verification.get("failure") or "").replace("\n", " ")[:300]
    what = "failed" + (f" ({failure})" if failure else "") if passed is False else "was never recorded"
    if not allow_unverified:
        raise UnverifiedArtifactError(
            f"{directory}: its export verification {what}; refusing an unverified artifact "
            "(re-export it, or pass allow_unverified=True / --allow-unverified to load it anyway)"
        )
    warnings.warn(
        f"{directory}: loading an unverified artifact: its export verification {what}; "
        "its outputs may differ from the trained model's",
        UnverifiedArtifactWarning,
        stacklevel=3,
    )


def open_artifact(directory: Path | str, *, allow_unverified: bool = False) -> Artifact:
    """Validate the manifest, require a passed verification, check every file; refuse on any problem."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    check_verified(directory, manifest, allow_unverified=allow_unverified)
    problems = integrity_problems(directory, manifest)
    if problems:
        raise ArtifactIntegrityError(str(directory), problems)
    return Artifact(directory, manifest)
