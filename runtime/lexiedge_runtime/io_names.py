"""The emotion classifier graph's input and output names, declared once.

The training side (``lexiedge_emotion_av.onnx_export``, ``lexiedge_onnx.classifier``), the latency
bench and this runtime all name the graph's feeds and outputs with these constants; this module
imports nothing, so an app (and the toolkit without torch) can read it.

Inputs, in the order of the model's ``forward``: ``waveform`` float32 (B, S), ``frames`` float32
(B, T, 3, H, W), ``audio_mask`` and ``video_mask`` float32 (B,). Outputs: ``logits`` (B, classes),
what the model returns, and ``probabilities``, their softmax, appended to the graph at export.
"""

from __future__ import annotations

WAVEFORM = "waveform"
FRAMES = "frames"
AUDIO_MASK = "audio_mask"
VIDEO_MASK = "video_mask"
INPUT_NAMES: tuple[str, ...] = (WAVEFORM, FRAMES, AUDIO_MASK, VIDEO_MASK)

LOGITS = "logits"
PROBABILITIES = "probabilities"
MODEL_OUTPUT_NAMES: tuple[str, ...] = (LOGITS,)  # what torch.onnx.export names; the softmax comes after

__all__ = [
    "AUDIO_MASK",
    "FRAMES",
    "INPUT_NAMES",
    "LOGITS",
    "MODEL_OUTPUT_NAMES",
    "PROBABILITIES",
    "VIDEO_MASK",
    "WAVEFORM",
]
