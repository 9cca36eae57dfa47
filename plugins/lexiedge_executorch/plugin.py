"""Entry point of the ExecuTorch exporters.

``[project.entry-points.lexiedge] executorch = "lexiedge_executorch.plugin"``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lexiedge.plugin import hookimpl

if TYPE_CHECKING:
    from lexiedge.api import ExporterPlugin
    from lexiedge.registry import Registry


@hookimpl
def lexiedge_add_exporters(registry: Registry[ExporterPlugin]) -> None:
    from lexiedge_executorch.exporters import EXPORTERS
    from lexiedge_executorch.llm_exporter import ExecutorchInt4Exporter

    for exporter in (*EXPORTERS, ExecutorchInt4Exporter):
        registry.add(exporter)
