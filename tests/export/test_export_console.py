"""What `lexiedge export` prints: our lines, not the libraries' chatter.

Run as a user runs it, in a fresh process with a real stderr: torch.onnx warns about torchvision once
per process, ONNX Runtime's quantizer gives advice through the root logger, and transformers draws a
progress bar for every model it loads; none of it may reach the console.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOISE = (
    "torchvision is not installed",
    "Please consider to run pre-processing",
    "Please check if the model is already quantized",
    "Loading weights",
    "WARNING:root",
    "Traceback",
)


def _lexiedge_process(*args: str | Path) -> str:
    result = subprocess.run([sys.executable, "-m", "lexiedge.cli", *map(str, args)], capture_output=True, text=True,
                            check=False, env={**os.environ, "COLUMNS": "250"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_export_prints_its_own_lines_and_no_library_noise(av_run: Path, lm_run: Path, tmp_path: Path) -> None:
    # int8 static: a fresh trace (torch.onnx) and both ORT quantizers; LLM int8 "dynamic": the fp32
    # reference loaded by transformers and ORT's dynamic quantizer on the builder's graph
    av = _lexiedge_process("export", "--run", av_run, "--target", "onnx-int8", "--out", tmp_path / "av",
                           "--set", "models.emotion-av.export.options.onnx-int8.mode=static",
                           "--set", "models.emotion-av.export.options.onnx-int8.max_val_clips=16")
    lm = _lexiedge_process("export", "--run", lm_run, "--target", "onnx-int8", "--out", tmp_path / "lm",
                           "--set", "models.qwen-lora.export.options.onnx-int8.llm_method=dynamic",
                           "--set", "models.qwen-lora.export.options.onnx-int8.prompts=1")
    for output, artifact in ((av, tmp_path / "av"), (lm, tmp_path / "lm")):
        for noise in NOISE:
            assert noise not in output, f"{noise!r} reached the console:\n{output}"
        assert f"exported {artifact}" in output and (artifact / "manifest.json").is_file()
    assert "MatMulInteger" in (tmp_path / "lm" / "manifest.json").read_text(), "the dynamic quantizer really ran"
    # every long step says what it is and how long it took, in a pipe too (no spinner there)
    for stage in ("tracing the fp32 graph", "calibration and static int8 quantization", "verification against PyTorch"):
        assert f"  {stage}" in av and f"done {stage}" in av, f"{stage!r} not shown:\n{av}"
    for stage in ("building the fp32 graph (onnxruntime-genai model builder)", "dynamic int8 quantization"):
        assert f"done {stage}" in lm, f"{stage!r} not shown:\n{lm}"
