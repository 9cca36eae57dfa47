"""The manifest's schema: the sections every artifact has, declared here; each task's, by its spec.

:func:`manifest_schema` is the JSON Schema of ``manifest.json``: :class:`Manifest` (the common
sections) and, for each registered task, its ``TaskSpec.section`` when ``task`` names it. The writer
checks what it wrote against it (``lexiedge export``), the Python runtime checks every manifest it
reads against it, and runtime-js checks against the same schema, generated into
``runtime-js/src/manifest.schema.js`` by::

    python -m lexiedge_runtime.tasks runtime-js/src/manifest.schema.js

(tests/js checks that the file is what this module generates). The schema's version is the manifest's
``format_version`` (:data:`MANIFEST_VERSION`, defined here with the format's name): a change a reader
must know about bumps it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lexiedge_runtime.tasks import av_classification
from lexiedge_runtime.tasks.registry import BUILT_IN_TASKS, find_task, known_tasks
from lexiedge_runtime.tasks.sections import Section, check, json_schema, meta, required
from lexiedge_runtime.tasks.spec import TaskSpec

MANIFEST = "manifest.json"  # the file an artifact directory describes itself in
MANIFEST_FORMAT = "lexiedge-artifact"  # the manifest's "format": what a reader checks first
MANIFEST_VERSION = 1  # the "format_version" lexiedge export writes; bump it for a change readers must know
SUPPORTED_FORMAT_VERSIONS = (1,)  # the versions this runtime reads
SHA256 = "^[0-9a-f]{64}$"
NON_EMPTY = "."


@dataclass(frozen=True, kw_only=True)
class FileEntry(Section):
    """One file of the artifact: its sha256 (and size); the runtime refuses a file that no longer matches."""

    sha256: str = required(pattern=SHA256)
    bytes: int | None = meta(minimum=0, omit_none=True)


@dataclass(frozen=True, kw_only=True)
class TensorEntry(Section):
    """One graph input or output: name, dtype, shape (a size, an axis name, or null)."""

    name: str = required()
    dtype: str | None = meta(omit_none=True)
    shape: list[int | str | None] | None = meta(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class Signature(Section):
    """The graph's inputs and outputs as the exporter's runtime reports them."""

    inputs: list[TensorEntry] | None = meta(omit_none=True)
    outputs: list[TensorEntry] | None = meta(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class RuntimeSection(Section):
    """What runs the artifact: the engine (which picks the runner) and the files it opens."""

    engine: str | None = meta(pattern=NON_EMPTY, omit_none=True)
    graph: str | None = meta(omit_none=True)
    config: str | None = meta(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class Verification(Section):
    """The export's verification against the source model; the runtime refuses one that did not pass."""

    passed: bool | None = meta(omit_none=True)
    failure: str | None = meta(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class Manifest(Section):
    """manifest.json of a lexiedge artifact: the sections every artifact has (a task adds its own)."""

    format: Literal[MANIFEST_FORMAT] = required()
    format_version: Literal[MANIFEST_VERSION] = required()
    task: str = required(pattern=NON_EMPTY)
    files: dict[str, FileEntry] = required(minProperties=1)
    model: str | None = meta(omit_none=True)
    target: str | None = meta(omit_none=True)
    runtime: RuntimeSection | None = meta(omit_none=True)
    signature: Signature | None = meta(omit_none=True)
    model_files: list[str] | None = meta(omit_none=True)
    size_bytes: int | None = meta(minimum=0, omit_none=True)
    verification: Verification | None = meta(omit_none=True)
    # source (the run it came from) and versions are provenance for people: no reader relies on their shape


def manifest_schema(specs: list[TaskSpec] | None = None) -> dict[str, Any]:
    """The JSON Schema of manifest.json: the common sections, then each task's (``specs``, default: every
    registered task) when ``task`` is it."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "lexiedge-artifact/manifest.schema.json",
        "title": "lexiedge artifact manifest, format_version 1",
        **json_schema(Manifest),
    }
    specs = _registered() if specs is None else specs
    schema["allOf"] = [
        {
            "if": {"properties": {"task": {"const": spec.name}}, "required": ["task"]},
            "then": json_schema(spec.section),
        }
        for spec in specs
        if spec.section is not None
    ]
    return schema


def _registered() -> list[TaskSpec]:
    return [spec for name in known_tasks() if (spec := find_task(name)) is not None]


def check_manifest_schema(manifest: Any, where: str) -> None:
    """Refuse (:class:`~lexiedge_runtime.errors.ManifestError`, naming the key) what the schema refuses."""
    check(_schema_of(tuple(known_tasks())), manifest, where)


@functools.lru_cache(maxsize=4)
def _schema_of(tasks: tuple[str, ...]) -> dict[str, Any]:
    """The schema of these registered tasks, built once (every manifest read checks against it)."""
    return manifest_schema([spec for name in tasks if (spec := find_task(name)) is not None])


def javascript_module() -> str:
    """``runtime-js/src/manifest.schema.js``: the schema and the task names as an ES module (browsers and Node
    import it as is)."""
    tasks = {spec.name: {"generates": spec.generates, "metric": spec.metric.name} for spec in BUILT_IN_TASKS}
    return (
        "// Generated from lexiedge_runtime/tasks/schema.py and the task specs by\n"
        "//   python -m lexiedge_runtime.tasks runtime-js/src/manifest.schema.js\n"
        "// Do not edit: tests/js/test_manifest_schema.py checks that it is what the generator writes.\n\n"
        f"export const TASKS = {json.dumps(tasks, indent=2)};\n\n"
        f"export const MANIFEST = {json.dumps(MANIFEST)};\n"
        f"export const MANIFEST_FORMAT = {json.dumps(MANIFEST_FORMAT)};\n"
        f"export const SUPPORTED_FORMAT_VERSIONS = {json.dumps(list(SUPPORTED_FORMAT_VERSIONS))};\n"
        f"export const FEEDS_VERSION = {json.dumps(av_classification.Feeds.VERSION)};\n\n"
        f"export const MANIFEST_SCHEMA = {json.dumps(manifest_schema(list(BUILT_IN_TASKS)), indent=2)};\n"
    )


def write_javascript_module(path: Path) -> None:
    path.write_text(javascript_module(), encoding="utf-8")
