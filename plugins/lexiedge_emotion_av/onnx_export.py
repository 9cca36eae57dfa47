"""ONNX export of :class:`EmotionAVModel` with dynamic batch, audio samples and frame count.

Uses the torch.export-based exporter (``torch.onnx.export(..., dynamo=True)``), the only one in
torch >= 2.9, with ``dynamic_shapes`` built from :class:`torch.export.Dim`. The graph uses opset 18
primitives only (Conv for the STFT, MatMul/Softmax attention, written-out RMSNorm), so the same file
runs on ORT CPU, converts to ORT Mobile's format and parses in TensorRT.

Exporter reuse::

    from lexiedge_emotion_av.onnx_export import export_onnx, INPUT_NAMES, OUTPUT_NAMES
    export_onnx(model, "model.onnx", (waveform, frames, audio_mask, video_mask))
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from lexiedge import atomic
from lexiedge.errors import UsageError
from lexiedge_runtime.io_names import (
    AUDIO_MASK,
    FRAMES,
    INPUT_NAMES,
    LOGITS,
    MODEL_OUTPUT_NAMES,
    VIDEO_MASK,
    WAVEFORM,
)

OUTPUT_NAMES = MODEL_OUTPUT_NAMES
OPSET = 18
# dynamic axes of each input (for manifests): name -> {axis: symbolic name}
DYNAMIC_AXES: dict[str, dict[int, str]] = {
    WAVEFORM: {0: "batch", 1: "samples"},
    FRAMES: {0: "batch", 1: "frames"},
    AUDIO_MASK: {0: "batch"},
    VIDEO_MASK: {0: "batch"},
    LOGITS: {0: "batch"},
}
MAX_SAMPLES = 16000 * 600  # ten minutes at 16 kHz: far above any clip, keeps the symbolic range finite
MAX_FRAMES = 4096


def dynamic_shapes(n_fft: int, *, dynamic_image: bool = False) -> dict[str, dict[int, torch.export.Dim]]:
    """torch.export dimension spec: batch, samples (>= n_fft) and frames (>= 1) are free.

    ``dynamic_image`` also frees the image height and width (the model accepts any H = W >= 32);
    off by default, since a deployment feeds one image size and a fixed one lets runtimes plan ahead.
    """
    batch = torch.export.Dim("batch", min=1, max=1024)
    samples = torch.export.Dim("samples", min=n_fft, max=MAX_SAMPLES)
    frames = torch.export.Dim("frames", min=1, max=MAX_FRAMES)
    frame_axes: dict[int, torch.export.Dim] = {0: batch, 1: frames}
    if dynamic_image:
        frame_axes[3] = torch.export.Dim("height", min=32, max=4096)
        frame_axes[4] = torch.export.Dim("width", min=32, max=4096)
    return {
        WAVEFORM: {0: batch, 1: samples},
        FRAMES: frame_axes,
        AUDIO_MASK: {0: batch},
        VIDEO_MASK: {0: batch},
    }


def export_onnx(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    example_inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    opset: int = OPSET,
    dynamic_image: bool = False,
) -> Path:
    """Export ``model`` (in eval mode, on CPU) to one self-contained ONNX file at ``path``; return it.

    ``example_inputs`` is (waveform, frames, audio_mask, video_mask); use batch >= 2 and frames >= 2
    so that the tracer does not specialise those axes to 1. The file is written to a temporary name
    next to ``path`` and moved into place only when the export succeeded.
    """
    waveform, frames = example_inputs[0], example_inputs[1]
    if waveform.shape[0] < 2 or frames.shape[1] < 2:
        # torch.export specialises a size-1 axis to the constant 1: the graph would take nothing else
        raise UsageError(
            f"export example inputs need batch >= 2 and frames >= 2 to stay dynamic, got waveform "
            f"{tuple(waveform.shape)} and frames {tuple(frames.shape)}"
        )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    n_fft = int(getattr(getattr(model, "settings", None), "n_fft", 400))
    try:
        with atomic.atomic_path(target) as temp_name:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not actionable here
                program = torch.onnx.export(
                    model,
                    tuple(example_inputs),
                    dynamo=True,
                    verbose=False,
                    input_names=list(INPUT_NAMES),
                    output_names=list(OUTPUT_NAMES),
                    opset_version=opset,
                    dynamic_shapes=dynamic_shapes(n_fft, dynamic_image=dynamic_image),
                    external_data=False,
                    optimize=True,
                )
            program.save(str(temp_name), external_data=False)
    finally:
        model.train(was_training)
    return target
