"""ONNX exporters: `onnx`, `onnx-int8`, `onnx-int4` and `ort-mobile` (ONNX Runtime Mobile's .ort format).

Classifiers go through torch.onnx (the model plugin's tracer) and ONNX Runtime quantization;
causal LMs through ONNX Runtime GenAI's model builder (GroupQueryAttention, MatMulNBits). Every
artifact is verified against the PyTorch model on inputs other than the trace's before it is kept.
Heavy imports (torch, onnx, onnxruntime) happen inside functions, so registering stays fast.
"""

from __future__ import annotations
