"""ONNX Runtime int8 quantization of a classifier graph: dynamic for MatMul/Gemm, static QDQ for convolutions.

Only learned weights are quantized. Nodes stay fp32 when they
- multiply two activations (attention scores, attention x values): no weight to store in int8, and
  quantizing both sides at run time costs accuracy for no size gain;
- use a fixed buffer (the STFT's DFT basis, the mel filters): signal processing whose inputs span
  many decades (a power spectrum) and would be crushed by an 8-bit scale;
- belong to a module listed in ``exclude_modules`` (matched on the exporter's name scopes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from lexiedge.export import ExportError

NAME_SCOPES = "pkg.torch.onnx.name_scopes"


def _scopes(node) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == NAME_SCOPES:
            return [part.strip(" '\"") for part in prop.value.strip("[]").split(",")]
    return []


def nodes_to_keep_float(
    model_path: Path, op_types: Iterable[str], fixed_tensors: set[str], exclude_modules: Iterable[str]
) -> list[str]:
    """Names of the ``op_types`` nodes that must stay fp32 (see the module docstring)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    prefixes = [module.rstrip(".") for module in exclude_modules]
    op_types = set(op_types)
    keep = []
    for node in model.graph.node:
        if node.op_type not in op_types:
            continue
        weight_inputs = [name for name in node.input[1:2] if name in constants]
        if not weight_inputs or any(name in fixed_tensors for name in node.input) or prefixes and any(s == p or s.startswith(p + ".") for s in _scopes(node) for p in prefixes):
            keep.append(node.name)
    return keep


def quantize_dynamic_int8(
    fp32: Path, out: Path, *, op_types: list[str], exclude: list[str], per_channel: bool
) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with quiet_ort_tools():
            quantize_dynamic(
                str(fp32),
                str(out),
                op_types_to_quantize=op_types,
                nodes_to_exclude=exclude,
                per_channel=per_channel,
                weight_type=QuantType.QInt8,
            )
    except Exception as exc:
        raise ExportError(f"ONNX Runtime dynamic quantization failed on {fp32.name}: {exc}") from exc
    return out


class _Calibration:
    """onnxruntime's CalibrationDataReader over prepared feed dicts."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # some onnxruntime versions call it between passes
        pass


def quantize_static_then_dynamic(
    fp32: Path,
    out: Path,
    scratch: Path,
    *,
    calibration: list[dict[str, np.ndarray]],
    static_op_types: list[str],
    dynamic_op_types: list[str],
    exclude_static: list[str],
    exclude_dynamic: list[str],
    per_channel: bool,
) -> Path:
    """Calibrated QDQ int8 for ``static_op_types`` (convolutions), then dynamic int8 for MatMul/Gemm."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    static = scratch / "static_qdq.onnx"
    try:
        with quiet_ort_tools():
            quantize_static(
                str(fp32),
                str(static),
                _Calibration(calibration),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=static_op_types,
                nodes_to_exclude=exclude_static,
                per_channel=per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ForceQuantizeNoInputCheck": False},
            )
    except Exception as exc:
        raise ExportError(f"ONNX Runtime static quantization failed on {fp32.name}: {exc}") from exc
    if not dynamic_op_types:
        static.replace(out)
        return out
    return quantize_dynamic_int8(static, out, op_types=dynamic_op_types, exclude=exclude_dynamic, per_channel=per_channel)


def count_quantized(path: Path) -> dict[str, int]:
    """Quantized node counts by op type (QDQ pairs, MatMulInteger, ...), for the manifest."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in {"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "QuantizeLinear",
                            "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulNBits",
                            "DynamicQuantizeMatMul", "QGemm"}:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


class _NotFromOrtQuantization(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime/quantization" not in record.pathname.replace("\\", "/")


# ORT's python tools that log what they try at WARNING by name; the manifest records what they did.
ORT_TOOL_LOGGERS = ("onnxruntime.transformers", "onnx_model", "fusion_base", "onnxruntime.quantization")


@contextlib.contextmanager
def quiet_ort_tools() -> Iterator[None]:
    """Silence ONNX Runtime's quantization and graph-optimisation tools for the call, leaving the
    logging setup as it was.

    The quantizer logs through the root logger ("Please consider to run pre-processing", "Please check
    if the model is already quantized"): a filter on the root drops those records; a NullHandler keeps
    ``logging.warning`` from installing a stderr handler on a root that has none (basicConfig). The
    transformers optimizer logs the fusions it tries through named loggers, raised to ERROR here.
    """
    root = logging.getLogger()
    only_others = _NotFromOrtQuantization()
    guard = None if root.handlers else logging.NullHandler()
    levels = {name: logging.getLogger(name).level for name in ORT_TOOL_LOGGERS}
    root.addFilter(only_others)
    if guard is not None:
        root.addHandler(guard)
    for name in ORT_TOOL_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        root.removeFilter(only_others)
        if guard is not None:
            root.removeHandler(guard)
