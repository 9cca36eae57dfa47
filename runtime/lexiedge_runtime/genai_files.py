"""What ONNX Runtime GenAI reads of an LLM artifact: exactly the files the manifest vouches for.

GenAI opens a folder, not a file: it reads the ``genai_config.json`` in it, then every graph that
config names, and ONNX Runtime reads the external-data files each graph names. Handing GenAI the
artifact directory would let an unlisted ``genai_config.json`` (whatever ``runtime.config`` names)
send it to an unlisted graph, and that graph would run unhashed. So the runtime

1. reads the config the manifest names (:func:`read_genai_config`) and checks it: a JSON object with
   a ``model.decoder`` mapping and numbers where numbers go; every file it names (any key about a
   file, path, folder or library) is a listed name inside the artifact; no native library at all;
2. gives GenAI a private folder (:func:`genai_folder`) holding a link to each listed file under its
   listed name, and the checked config under the name GenAI reads. Nothing else is in that folder,
   so nothing unlisted can be read through it; it is removed once the model is loaded (GenAI holds
   what it read).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.errors import ArtifactError, first_line

GENAI_CONFIG = "genai_config.json"
MAX_CONFIG_BYTES = 1 << 20  # a genai_config.json is ~2 KB
# keys whose string value GenAI or ONNX Runtime would open (decoder.filename, *_filename, ..._path, ...)
_PATH_KEY = re.compile(r"file|path|dir|librar", re.IGNORECASE)
_NATIVE_CODE_KEYS = frozenset({"custom_ops_library"})  # would load a shared library: code, not weights
_EXPECTED = "expected ONNX Runtime GenAI's genai_config.json as `lexiedge export` writes it (re-export the run)"


@dataclass(frozen=True)
class GenaiConfig:
    """The checked genai_config.json: its listed name, its folder in the artifact, what it says."""

    name: str
    data: dict[str, Any]

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.name)

    @property
    def model(self) -> dict[str, Any]:
        return self.data["model"]

    @property
    def context_length(self) -> int | None:
        return self.model.get("context_length") or None

    @property
    def vocab_size(self) -> int | None:
        return self.model.get("vocab_size") or None


def read_genai_config(artifact: Artifact) -> GenaiConfig:
    """The artifact's GenAI config (``runtime.config``, listed), checked; else one :class:`ArtifactError` line."""
    name = artifact.runtime.get("config") or GENAI_CONFIG
    path = artifact.path(name)  # refused unless listed (and so hashed)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ArtifactError(f"{path}: over {MAX_CONFIG_BYTES >> 20} MiB; {_EXPECTED}")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not UTF-8, not JSON
        reason = first_line(exc)[:200]
        raise ArtifactError(f"{path}: unreadable ({reason}); {_EXPECTED}") from None
    config = GenaiConfig(name, data)
    _check_shape(config, path)
    _check_named_files(artifact, config, path, data, "")
    return config


@contextmanager
def genai_folder(artifact: Artifact, config: GenaiConfig) -> Iterator[Path]:
    """A private folder of links to the listed files only, the checked config at the name GenAI reads;
    yields the folder to give ``og.Config`` (the config's own, inside it) and removes it afterwards."""
    with tempfile.TemporaryDirectory(prefix="lexiedge-genai-load-") as staging:
        for name in artifact.manifest["files"]:
            _link(artifact.directory / name, Path(staging, name))
        read_by_genai = Path(staging, config.folder, GENAI_CONFIG)
        if posixpath.join(config.folder, GENAI_CONFIG) != config.name:  # runtime.config names another file
            read_by_genai.unlink(missing_ok=True)
            _link(artifact.directory / config.name, read_by_genai)
        yield read_by_genai.parent


def _link(source: Path, link: Path) -> None:
    """``link`` -> ``source`` (absolute): no bytes copied. A copy where links are not allowed (Windows
    without the privilege): then the folder holds the same bytes, at the price of the disk space."""
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(os.path.abspath(source), link)
    except OSError:
        shutil.copyfile(source, link)


def _check_shape(config: GenaiConfig, path: Path) -> None:
    data = config.data
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: a JSON {type(data).__name__}; {_EXPECTED}")
    model = data.get("model")
    if not isinstance(model, dict):
        raise ArtifactError(f"{path}: model: expected a mapping, got {_kind(model)}; {_EXPECTED}")
    decoder = model.get("decoder")
    if not isinstance(decoder, dict):
        raise ArtifactError(f"{path}: model.decoder: expected a mapping, got {_kind(decoder)}; {_EXPECTED}")
    if not isinstance(decoder.get("filename"), str):
        raise ArtifactError(f"{path}: model.decoder.filename: expected the graph's file name, "
                            f"got {_kind(decoder.get('filename'))}; {_EXPECTED}")
    for key in ("context_length", "vocab_size"):
        value = model.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ArtifactError(f"{path}: model.{key}: expected a whole number >= 1, got {value!r}"[:300])
    eos = model.get("eos_token_id")
    ids = eos if isinstance(eos, list) else [eos]
    if eos is not None and not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        raise ArtifactError(f"{path}: model.eos_token_id: expected a token id or a list of them, got {eos!r}"[:300])


def _check_named_files(artifact: Artifact, config: GenaiConfig, path: Path, value: Any, key: str) -> None:
    """Every file the config names (relative to its folder, as GenAI resolves them) is listed; no library."""
    if isinstance(value, list):
        for position, item in enumerate(value):
            _check_named_files(artifact, config, path, item, f"{key}[{position}]")
        return
    if not isinstance(value, dict):
        return
    for name, item in value.items():
        where = f"{key}.{name}" if key else str(name)
        if name in _NATIVE_CODE_KEYS:
            raise ArtifactError(f"{path}: {where}: the runtime never loads a native library named by an "
                                "artifact; remove the key")
        if isinstance(item, str) and _PATH_KEY.search(str(name)):
            member = _member(config.folder, item)
            if member is None or member not in artifact.manifest["files"]:
                raise ArtifactError(f"{path}: {where} names {item!r}"[:300] + ", which manifest.json does not "
                                    "list; refusing to load a file whose sha256 is unknown")
        else:
            _check_named_files(artifact, config, path, item, where)


def _member(folder: str, name: str) -> str | None:
    """The artifact member ``name`` names from ``folder``; None for an absolute or escaping path."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or PureWindowsPath(name).drive:
        return None
    joined = posixpath.normpath(posixpath.join(folder, name))
    return None if joined.startswith("../") or joined in ("..", ".") else joined


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"
