"""An exported graph carries no trace of the machine that exported it: torch.onnx writes each node's Python
stack (with this checkout's file paths) into the graph; the exporter drops it, so the same weights give the
same bytes from any checkout (issue 30's byte-for-byte check found two checkouts differing only there)."""

from __future__ import annotations

from pathlib import Path

import onnx


def test_the_onnx_graph_names_no_source_file_of_the_exporting_checkout(small_av_artifact: Path) -> None:
    import lexiedge_emotion_av
    from lexiedge_onnx.classifier import SOURCE_TRACE

    graph = onnx.load(str(small_av_artifact / "model.onnx"))
    keys = {prop.key for node in graph.graph.node for prop in node.metadata_props}
    assert SOURCE_TRACE not in keys
    assert "pkg.torch.onnx.name_scopes" in keys, "the module scopes (no paths) stay: they name each node's layer"
    checkout = str(Path(lexiedge_emotion_av.__file__).resolve().parent.parent).encode()
    assert checkout not in (small_av_artifact / "model.onnx").read_bytes()
