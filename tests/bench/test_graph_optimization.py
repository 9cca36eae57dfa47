"""Graph optimisation before int8 quantization (lexiedge_onnx.optimize), on a real exported classifier.

The speed work must not change what the model computes: the optimised graph gives the traced graph's
outputs at every input shape, keeps its signature and the names of its weighted nodes (the int8 path
picks the nodes that stay fp32 by those names), and the int8 export records what was fused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lexiedge_onnx.optimize import optimize_graph

WEIGHTED = {"Conv", "MatMul", "Gemm"}


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the file's graph, as saved
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _clip(batch: int, samples: int, frames: int, size: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "waveform": (rng.uniform(-1, 1, (batch, samples)) * 0.1).astype(np.float32),
        "frames": rng.uniform(0, 1, (batch, frames, 3, size, size)).astype(np.float32),
        "audio_mask": np.ones(batch, np.float32),
        "video_mask": np.ones(batch, np.float32),
    }


@pytest.fixture(scope="module")
def optimized(av_artifacts, tmp_path_factory) -> tuple[Path, Path, dict]:
    traced = av_artifacts["onnx"] / "model.onnx"
    out = tmp_path_factory.mktemp("optimized") / "model.onnx"
    return traced, out, optimize_graph(traced, out)


@pytest.mark.slow
def test_optimized_graph_computes_the_traced_graphs_outputs_at_every_shape(optimized, av_artifacts):
    traced, out, _ = optimized
    data = json.loads((av_artifacts["onnx"] / "manifest.json").read_text())["preprocessing"]["data_settings"]
    samples, frames, size = round(data["clip_seconds"] * data["sample_rate"]), data["frames"], data["image_size"]
    before, after = _session(traced), _session(out)
    assert [i.name for i in after.get_inputs()] == [i.name for i in before.get_inputs()]
    assert [o.name for o in after.get_outputs()] == [o.name for o in before.get_outputs()]
    for batch, length, count, seed in ((1, samples, frames, 0), (3, samples // 2 + 321, frames + 3, 1)):
        feeds = _clip(batch, length, count, size, seed)
        for expected, actual in zip(before.run(None, feeds), after.run(None, feeds)):
            assert actual.shape == expected.shape
            np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_fusions_are_applied_and_reported(optimized):
    traced, out, report = optimized
    graph = onnx.load(str(out)).graph
    ops = [node.op_type for node in graph.node]
    assert report["fusions"], "the emotion-av graph has LayerNorm/GELU/residual patterns to fuse"
    assert all(op in ops for op in report["fusions"])
    assert "Erf" not in ops  # every exact GELU became one Gelu/BiasGelu node
    assert report["nodes_after"] == len(ops) < report["nodes_before"] == len(onnx.load(str(traced)).graph.node)
    assert "com.microsoft" in report["domains"]


@pytest.mark.slow
def test_weighted_nodes_keep_their_names(optimized):
    """The int8 path chooses fp32 nodes (fixed buffers, excluded modules) by name on the traced graph."""
    traced, out, _ = optimized
    weighted = {node.name for node in onnx.load(str(traced)).graph.node if node.op_type in WEIGHTED}
    names = {node.name for node in onnx.load(str(out)).graph.node}
    assert weighted and weighted <= names


@pytest.mark.slow
def test_int8_export_records_the_optimisation_and_still_verifies(av_artifacts):
    artifact = av_artifacts["onnx-int8"]
    manifest = json.loads((artifact / "manifest.json").read_text())
    quantization = manifest["quantization"]
    assert manifest["settings"]["optimize"] is True  # the default for onnx-int8
    assert quantization["optimization"]["fusions"] and "com.microsoft" in quantization["optimization"]["domains"]
    assert manifest["verification"]["passed"] is True
    domains = {node.domain for node in onnx.load(str(artifact / "model.onnx")).graph.node}
    assert "com.microsoft" in domains  # the fused norms and GELUs survived quantization
    fp32_manifest = json.loads((av_artifacts["onnx"] / "manifest.json").read_text())
    assert fp32_manifest["export"]["optimized"] is False and "optimization" not in fp32_manifest
