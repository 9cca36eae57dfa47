"""Offline graph optimisation of a classifier graph, before it is saved (fp32) or quantized (int8).

Two documented ONNX Runtime tools, in this order:

1. ``onnxruntime.quantization.shape_inference.quant_pre_process``: ONNX shape inference and ONNX
   Runtime's *basic* graph optimisations (constant folding, redundant-node elimination, Conv+Add/Mul
   folding). Basic-level rewrites use standard ONNX ops only, so the result runs on any CPU. Symbolic
   shape inference is skipped: it cannot follow the torch.export graph's computed Concat shapes
   (dynamic samples/frames), and ONNX's own inference plus ORT's is enough for the steps below.
2. ``onnxruntime.transformers.optimizer.optimize_model`` (python fusions only, ``opt_level=0``): GELU
   (Erf pattern -> Gelu / BiasGelu), LayerNorm, SkipLayerNorm (residual Add + LayerNorm), and RMSNorm
   -> (Skip)SimplifiedLayerNormalization. These are com.microsoft ops: ONNX Runtime (CPU, CUDA, ORT
   Mobile with the ops in its build) runs them, other runtimes do not — which is why the fp32 ``onnx``
   target leaves this off by default and ``onnx-int8`` (an ORT-only graph anyway) turns it on.

Why before quantization: the quantizer then sees one MatMul per projection with its bias/activation
already folded, and the fewer fp32 elementwise nodes left between int8 ops, the fewer
Quantize/Dequantize pairs run. ORT's *extended/all* levels (NCHWc layouts, fusions specific to the
machine's instruction set) are deliberately not saved: they are applied when a session loads the graph.

Node names of Conv/MatMul/Gemm survive both steps (the fusions replace norms and activations, not
the weighted ops), so nodes chosen on the traced graph (by name) are still found afterwards.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from lexiedge_runtime.errors import first_line

from lexiedge.export import ExportError
from lexiedge_onnx.quantize import quiet_ort_tools

TOOL = "onnxruntime quant_pre_process (ORT basic level) + onnxruntime.transformers.optimizer fusions"


def optimize_graph(src: Path, out: Path) -> dict[str, Any]:
    """Optimise ``src`` into ``out``; returns the manifest's ``optimization`` section (op counts before/after)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    before = op_counts(src)
    with (
        quiet_ort_tools(),
        tempfile.TemporaryDirectory(prefix="lexiedge-optimize-") as scratch,
    ):
        basic = Path(scratch) / "basic.onnx"
        try:
            quant_pre_process(
                str(src), str(basic), skip_optimization=False, skip_onnx_shape=False, skip_symbolic_shape=True
            )
            options = FusionOptions("bert")
            options.enable_embed_layer_norm = False  # BERT's word+position embeddings: not in this graph
            fused = optimize_model(str(basic), model_type="bert", opt_level=0, optimization_options=options)
        except Exception as exc:
            first = first_line(exc)
            raise ExportError(f"ONNX Runtime graph optimisation failed on {src.name}: {first}") from exc
        statistics = fused.get_fused_operator_statistics()
        model = fused.model
        _check_outputs(src, model)
        onnx.save(model, str(out))
    after = op_counts(out)
    return {
        "tool": TOOL,
        "saved_level": "basic + transformer fusions (extended/all applied by ORT at load)",
        "fusions": {op: count for op, count in sorted(statistics.items()) if count},
        "nodes_before": sum(before.values()),
        "nodes_after": sum(after.values()),
        "domains": sorted({domain or "ai.onnx" for domain in _domains(out)}),
    }


def op_counts(path: Path) -> Counter[str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return Counter(node.op_type for node in model.graph.node)


def _domains(path: Path) -> set[str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {node.domain for node in model.graph.node}


def _check_outputs(src: Path, model: Any) -> None:
    """The optimised graph must keep the traced graph's inputs and outputs (names), or apps break."""
    import onnx

    original = onnx.load(str(src), load_external_data=False).graph
    names = lambda values: [value.name for value in values]  # noqa: E731
    if names(original.input) != names(model.graph.input) or names(original.output) != names(
        model.graph.output
    ):
        raise ExportError(
            f"graph optimisation changed the signature of {src.name}: inputs {names(model.graph.input)}, "
            f"outputs {names(model.graph.output)} (expected {names(original.input)} / {names(original.output)})"
        )
