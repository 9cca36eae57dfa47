"""Runs in the LiteRT converter's own environment (:mod:`lexiedge_litert.converter_env`), never in lexiedge's.

    <converter python> child.py REQUEST.json

It imports torch, litert-torch and ai-edge-quantizer only (nothing of lexiedge): it loads a
``torch.export`` program (.pt2), converts it to a .tflite file, optionally quantizes it (dynamic-range
int8 on the listed op types, for the ops whose scope does not match ``keep_float_scope``), and writes a
JSON report of what it did. The program takes keyword inputs and returns a dict, so the .tflite
signature has the graph's names. The request (JSON): ``program``, ``out``, ``report``, and for int8
``int8_op_types`` (TFLite op names: FULLY_CONNECTED, CONV_2D) and ``keep_float_scope`` (a regular
expression or null).
Any failure exits non-zero with one line on stderr, the last line the parent reads.
"""

from __future__ import annotations

import collections
import importlib.metadata
import json
import os
import sys
import traceback


def convert(request: dict) -> dict:
    import litert_torch
    import torch

    # saved with keyword inputs and a dict of outputs: the .tflite signature takes those names; the
    # program's module keeps the model's module scopes in its op names (what keep_float_scope matches)
    program = torch.export.load(request["program"])
    args, kwargs = program.example_inputs
    # no .eval(): an exported program's module is already in inference form (and refuses train()/eval())
    edge = litert_torch.convert(program.module(), sample_args=args, sample_kwargs=kwargs)
    fp32_path = request["out"] + ".fp32" if request.get("int8_op_types") else request["out"]
    edge.export(fp32_path)
    report: dict = {"converter": _versions(), "ops": _op_counts(fp32_path)}
    if request.get("int8_op_types"):
        report["quantization"] = quantize(
            fp32_path, request["out"], request["int8_op_types"], request.get("keep_float_scope")
        )
        os.remove(fp32_path)
        report["ops"] = _op_counts(request["out"])
    return report


def quantize(source: str, out: str, op_types: list[str], keep_float_scope: str | None) -> dict:
    """Dynamic-range int8 (int8 weights per channel, activations quantized on the fly) on ``op_types``."""
    from ai_edge_quantizer import qtyping, quantizer

    # an op is quantized when its scope matches; the negative look-ahead leaves the kept scopes in float
    scope = f"^(?!.*(?:{keep_float_scope})).*" if keep_float_scope else ".*"
    engine = quantizer.Quantizer(source)
    for op in op_types:
        engine.add_dynamic_config(
            regex=scope, operation_name=getattr(qtyping.TFLOperationName, op), num_bits=8
        )
    result = engine.quantize()
    result.export_model(out, overwrite=True)
    before, after = _op_counts(source), _op_counts(out)
    return {
        "tool": "ai-edge-quantizer",
        "recipe": "dynamic range int8: int8 weights (per channel), float activations quantized at run time",
        "op_types": op_types,
        "keep_float_scope": keep_float_scope,
        "quantized_ops": _quantized_ops(out, op_types),
        "ops_before": before,
        "ops_after": after,
    }


def _interpreter(path: str):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=path)


def _op_counts(path: str) -> dict[str, int]:
    return dict(collections.Counter(op["op_name"] for op in _interpreter(path)._get_ops_details()))


def _quantized_ops(path: str, op_types: list[str]) -> int:
    """Ops of ``op_types`` whose weight (second input) is an int8 tensor."""
    interpreter = _interpreter(path)
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    count = 0
    for op in interpreter._get_ops_details():
        inputs = [index for index in op["inputs"] if index >= 0]
        if (
            op["op_name"] in op_types
            and len(inputs) > 1
            and str(tensors[inputs[1]]["dtype"]).endswith("int8'>")
        ):
            count += 1
    return count


def _versions() -> dict[str, str]:
    versions = {}
    for name in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer", "torch"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as handle:
        request = json.load(handle)
    try:
        report = convert(request)
    except Exception as exc:  # one line for the parent; the traceback above it for whoever reads the log
        traceback.print_exc()
        said = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{type(exc).__name__}: {said[:400]}", file=sys.stderr)
        return 1
    with open(request["report"], "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
