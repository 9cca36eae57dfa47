"""ONNX -> ORT format (.ort) for ONNX Runtime Mobile, with the operator list of a reduced build.

``onnxruntime.tools.convert_onnx_models_to_ort`` applies the graph optimizations at conversion
time (style ``Fixed``, or ``Runtime`` for compiling EPs such as NNAPI/CoreML) and writes
``<name>.required_operators.config``: the operators (and opsets) a minimal ONNX Runtime build
must include (``build.sh --minimal_build --include_ops_by_config <file>``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lexiedge.export import ExportError

OPERATORS_SUFFIX = ".required_operators.config"


def convert_to_ort(onnx_path: Path, out_dir: Path, *, optimization_style: str = "Fixed") -> tuple[Path, Path]:
    """Convert one .onnx (external data beside it is read) into ``out_dir``; returns (.ort, operators config)."""
    stem = onnx_path.stem
    with tempfile.TemporaryDirectory(prefix="lexiedge-ort-") as scratch:
        command = [
            sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(onnx_path),
            "--output_dir", scratch, "--optimization_style", optimization_style,
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        produced = Path(scratch) / f"{stem}.ort"
        config = Path(scratch) / f"{stem}{OPERATORS_SUFFIX}"
        if result.returncode != 0 or not produced.is_file() or not config.is_file():
            lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit code {result.returncode}"
            raise ExportError(f"conversion of {onnx_path.name} to the ORT format failed: {reason}")
        ort_path, config_path = out_dir / produced.name, out_dir / config.name
        shutil.move(str(produced), ort_path)
        # the generated header names the scratch path; say where the file came from instead
        lines = config.read_text(encoding="utf-8").splitlines()
        body = [line for line in lines if not line.startswith("#")]
        header = ["# Operators ONNX Runtime Mobile needs for this artifact.",
                  f"# A reduced build: ./build.sh --minimal_build --include_ops_by_config {config.name}",
                  f"# - {ort_path.name} ({optimization_style} optimization style)"]
        config_path.write_text("\n".join(header + body) + "\n", encoding="utf-8")
    return ort_path, config_path


def required_operators(config_path: Path) -> dict[str, list[str]]:
    """``{"domain;opset": [ops]}`` from an operators config, for the manifest."""
    table: dict[str, list[str]] = {}
    for line in config_path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        domain, opset, ops = line.split(";", 2)
        table[f"{domain};{opset}"] = sorted(ops.split(","))
    return table
