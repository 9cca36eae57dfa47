"""Entry point of the LiteRT exporters.

``[project.entry-points.lexiedge] litert = "lexiedge_litert.plugin"``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lexiedge.plugin import hookimpl

if TYPE_CHECKING:
    from lexiedge.api import ExporterPlugin
    from lexiedge.registry import Registry


@hookimpl
def lexiedge_add_exporters(registry: Registry[ExporterPlugin]) -> None:
    from lexiedge_litert.exporters import EXPORTERS

    for exporter in EXPORTERS:
        registry.add(exporter)
