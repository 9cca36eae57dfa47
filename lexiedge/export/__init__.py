"""The export stage: a run directory -> one verified, self-describing artifact directory per target.

    lexiedge export --target onnx --run runs/cpu/emotion-av/20250101-120000
    lexiedge export --profile cpu                 # every target each model's profile lists, newest runs

One module per concern, read in this order:

* :mod:`~lexiedge.export.steps` — what will be done, resolved and checked before any work
  (:class:`ExportRequest` -> :class:`ExportStep` list; every bad input refused up front);
* :mod:`~lexiedge.export.merge` — the merge an adapter-trained run needs first (:class:`MergeStep`);
* :mod:`~lexiedge.export.run` — running the steps: the exporter plugin in a temporary folder;
* :mod:`~lexiedge.export.manifest` — ``manifest.json``: the exporter's sections, then the source run, the
  library versions, the size and every file's sha256 (:func:`update_manifest`, :func:`finalize_manifest`);
* :mod:`~lexiedge.export.card` — the model card (``README.md``), rendered from the finished manifest;
* :mod:`~lexiedge.export.publish` — the rename into place, ``<out>.failed/`` for a rejected artifact, and
  the leftovers of killed exports;
* :mod:`~lexiedge.export.errors` — :class:`ExportError` and the typed verification errors;
* :mod:`~lexiedge.export.report` — the export table's sizes and one-line verification summary.

Exporter plugins import what they need from here (``from lexiedge.export import update_manifest,
VerificationError``); modules of this package import each other directly.
"""

from __future__ import annotations

from lexiedge.export.errors import AgreementError, AtolError, ExportError, ShapeError, VerificationError
from lexiedge.export.manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    VERSIONED_PACKAGES,
    dynamic_axes,
    file_table,
    finalize_manifest,
    library_versions,
    read_manifest,
    update_manifest,
    verify_files,
    write_manifest,
)
from lexiedge.export.merge import MergeStep, merge_stage, merge_steps
from lexiedge.export.report import human_size, verification_summary
from lexiedge.export.run import ExportResult, export, export_run
from lexiedge.export.steps import (
    ARTIFACTS_DIR,
    ExportRequest,
    ExportStep,
    check_output_dir,
    check_run_has_weights,
    default_artifact_dir,
    export_steps,
)
from lexiedge.runtime.artifact import sha256_file

__all__ = [
    "ARTIFACTS_DIR",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "VERSIONED_PACKAGES",
    "AgreementError",
    "AtolError",
    "ExportError",
    "ExportRequest",
    "ExportResult",
    "ExportStep",
    "MergeStep",
    "ShapeError",
    "VerificationError",
    "check_output_dir",
    "check_run_has_weights",
    "default_artifact_dir",
    "dynamic_axes",
    "export",
    "export_run",
    "export_steps",
    "file_table",
    "finalize_manifest",
    "human_size",
    "library_versions",
    "merge_stage",
    "merge_steps",
    "read_manifest",
    "sha256_file",
    "update_manifest",
    "verification_summary",
    "verify_files",
    "write_manifest",
]
