"""The emotion classifier graph's input and output names, for the modules that import them from here.

They are declared, with their dtypes and dynamic axes, by the task spec
(:mod:`lexiedge_runtime.tasks.av_classification`); this module re-exports the names.

Inputs, in the order of the model's ``forward``: ``waveform`` float32 (B, S), ``frames`` float32
(B, T, 3, H, W), ``audio_mask`` and ``video_mask`` float32 (B,). Outputs: ``logits`` (B, classes),
what the model returns, and ``probabilities``, their softmax, appended to the graph at export.
"""

from __future__ import annotations

from lexiedge_runtime.tasks.av_classification import (
    AUDIO_MASK,
    FRAMES,
    INPUT_NAMES,
    LOGITS,
    MODEL_OUTPUT_NAMES,
    PROBABILITIES,
    VIDEO_MASK,
    WAVEFORM,
)

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
