"""What ``manifest.json`` must hold before the runtime trusts it, checked in plain Python.

The runtime installs without pydantic, so these checks are small functions. They run on the parsed
JSON before any file the manifest names is opened, and they check only what the runtime reads:

* every path the runtime may open (``files`` keys, ``runtime.graph``/``config``,
  ``tokenizer.chat_template``/``files``, ``model_files``) is relative, POSIX-normalised and free of
  ``..``, so it names something inside the artifact directory (:func:`check_member_name`);
* ``files`` maps those names to a 64-digit hex sha256 (and optionally a byte count);
* ``labels``, ``verification.passed``, ``size_bytes``, ``signature`` and the tokenizer's ids have
  the types the runtime, the bench and `lexiedge infer` use; the task's own section is checked by its
  spec (:attr:`lexiedge_runtime.tasks.TaskSpec.check_manifest`: a classifier's sample rate, clip
  length, frame count, image size and recorded decoding, in
  :func:`lexiedge_runtime.tasks.av_classification.check_manifest`).

Keys this runtime does not read are left alone: exporters may add verification numbers and
sections freely. ``source`` paths (the run an artifact came from) are provenance for humans and
are never opened.
"""

from __future__ import annotations

import re
from pathlib import PureWindowsPath
from typing import Any

from lexiedge_runtime.errors import ArtifactError, ManifestError
from lexiedge_runtime.tasks.registry import find_task
from lexiedge_runtime.tasks.schema import (
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    SUPPORTED_FORMAT_VERSIONS,
    check_manifest_schema,
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_member_name(name: Any, where: str, key: str) -> str:
    """``name`` if it is a relative, normalised POSIX path inside the artifact; else a ManifestError.

    Normalised means what ``PurePosixPath`` would not change: no empty, ``.`` or ``..`` parts, no
    backslashes (a Windows separator a POSIX check would miss), no drive letter, no NUL byte. The
    message names the manifest entry, never anything the path points at.
    """
    if not isinstance(name, str) or not name:
        raise ManifestError(where, key, f"expected a relative file name inside the artifact, got {name!r}")
    if "\\" in name or "\x00" in name:
        raise ManifestError(where, key, f"{name!r} holds a backslash or NUL; expected a '/'-separated relative path")
    if name.startswith("/") or PureWindowsPath(name).drive:
        raise ManifestError(where, key, f"{name!r} is an absolute path; an artifact names only files inside itself")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise ManifestError(
            where, key, f"{name!r} is not a normalised relative path (no '..', '.' or empty parts): "
            "an artifact names only files inside itself"
        )
    return name


def validate_manifest(manifest: dict[str, Any], where: str) -> None:
    """Refuse (one :class:`ManifestError` line) the first value the runtime could not use safely."""
    files = _files(manifest, where)
    _check_runtime_section(manifest, where, files)
    _check_tokenizer_section(manifest, where, files)
    for position, name in enumerate(_optional_list(manifest, "model_files", where)):
        check_member_name(name, where, f"model_files[{position}]")
    if not isinstance(manifest.get("task"), str) or not manifest["task"]:
        raise ManifestError(where, "task", f"expected the task name as a string, got {manifest.get('task')!r}")
    _check_labels(manifest, where)
    verification = _optional_dict(manifest, "verification", where)
    if "passed" in verification and not isinstance(verification["passed"], bool):
        raise ManifestError(where, "verification.passed", f"expected true or false, got {verification['passed']!r}")
    if "size_bytes" in manifest and not _is_count(manifest["size_bytes"]):
        raise ManifestError(where, "size_bytes", f"expected a whole number >= 0, got {manifest['size_bytes']!r}")
    _check_signature(manifest, where)
    architecture = _optional_dict(manifest, "architecture", where)
    if architecture.get("vocab_size") is not None and not _is_positive_int(architecture["vocab_size"]):
        raise ManifestError(where, "architecture.vocab_size", f"expected a whole number >= 1, got "
                                                              f"{architecture['vocab_size']!r}")
    preprocessing = _optional_dict(manifest, "preprocessing", where)
    if preprocessing.get("data_settings") is not None and not isinstance(preprocessing["data_settings"], dict):
        raise ManifestError(where, "preprocessing.data_settings", "expected a mapping")
    task = find_task(manifest["task"])  # an unknown task is refused where a runner is chosen (load)
    if task is not None and task.check_manifest is not None:
        task.check_manifest(manifest, where)
    check_manifest_schema(manifest, where)  # the rules runtime-js checks too, from the same declaration


# --- sections ---------------------------------------------------------------------------------------


def _files(manifest: dict[str, Any], where: str) -> dict[str, Any]:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{where}: the manifest lists no files with their sha256; refusing an unverifiable artifact")
    for name, entry in files.items():
        check_member_name(name, where, f"files[{name!r}]")
        if name == MANIFEST:
            raise ManifestError(where, f"files[{name!r}]", "the manifest cannot vouch for itself; remove the entry")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not _SHA256.match(entry["sha256"]):
            raise ManifestError(where, f"files[{name!r}].sha256", "expected 64 lowercase hex digits (the file's sha256)")
        if "bytes" in entry and not _is_count(entry["bytes"]):
            raise ManifestError(where, f"files[{name!r}].bytes", f"expected a whole number >= 0, got {entry['bytes']!r}")
    return files


def _check_runtime_section(manifest: dict[str, Any], where: str, files: dict[str, Any]) -> None:
    runtime = _optional_dict(manifest, "runtime", where)
    for key in ("graph", "config"):
        if runtime.get(key) is not None:
            _listed(check_member_name(runtime[key], where, f"runtime.{key}"), files, where, f"runtime.{key}")


def _check_tokenizer_section(manifest: dict[str, Any], where: str, files: dict[str, Any]) -> None:
    tokenizer = _optional_dict(manifest, "tokenizer", where)
    if tokenizer.get("chat_template") is not None:
        name = check_member_name(tokenizer["chat_template"], where, "tokenizer.chat_template")
        _listed(name, files, where, "tokenizer.chat_template")
    for position, name in enumerate(_optional_list(tokenizer, "files", where, "tokenizer.files")):
        check_member_name(name, where, f"tokenizer.files[{position}]")
    eos = tokenizer.get("eos_token_ids")
    if eos is not None and not (_is_count(eos) or (isinstance(eos, list) and all(_is_count(i) for i in eos))):
        raise ManifestError(where, "tokenizer.eos_token_ids", f"expected a token id or a list of them, got {eos!r}")


def _check_labels(manifest: dict[str, Any], where: str) -> None:
    labels = manifest.get("labels")
    if labels is None:
        return
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise ManifestError(where, "labels", f"expected a non-empty list of label names, got {labels!r}"[:300])
    if len(set(labels)) != len(labels):
        raise ManifestError(where, "labels", "a label is listed twice; each class needs its own name")


def _check_signature(manifest: dict[str, Any], where: str) -> None:
    signature = _optional_dict(manifest, "signature", where)
    for side in ("inputs", "outputs"):
        for position, value in enumerate(_optional_list(signature, side, where, f"signature.{side}")):
            key = f"signature.{side}[{position}]"
            if not isinstance(value, dict) or not isinstance(value.get("name"), str):
                raise ManifestError(where, key, "expected {\"name\": str, \"dtype\": str, \"shape\": [...]}")
            shape = value.get("shape")
            if shape is not None and not (isinstance(shape, list) and all(
                    dim is None or isinstance(dim, str) or _is_count(dim) for dim in shape)):
                raise ManifestError(where, f"{key}.shape", f"expected a list of sizes (>= 0) or axis names, got {shape!r}")


# --- small helpers -------------------------------------------------------------------------------------


def _listed(name: str, files: dict[str, Any], where: str, key: str) -> None:
    if name not in files:
        raise ManifestError(where, key, f"{name!r} is not in the manifest's files (so its sha256 is unknown)")


def _optional_dict(container: dict[str, Any], key: str, where: str, label: str | None = None) -> dict[str, Any]:
    value = container.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(where, label or key, f"expected a mapping, got {type(value).__name__}")
    return value


def _optional_list(container: dict[str, Any], key: str, where: str, label: str | None = None) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(where, label or key, f"expected a list, got {type(value).__name__}")
    return value


def _is_count(value: Any) -> bool:
    """A whole number >= 0 (JSON has no separate integer type for bools to hide in, Python does)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_positive_int(value: Any) -> bool:
    return _is_count(value) and value >= 1


__all__ = ["MANIFEST", "MANIFEST_FORMAT", "MANIFEST_VERSION", "SUPPORTED_FORMAT_VERSIONS", "ManifestError",
           "check_member_name", "validate_manifest"]
