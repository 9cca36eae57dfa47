"""ONNX export of :class:`EmotionAVModel` with dynamic batch, audio samples and frame count.

Uses the torch.export-based exporter (``torch.onnx.export(..., dynamo=True)``), the only one in
torch >= 2.9, with ``dynamic_shapes`` built from :class:`torch.export.Dim`. The graph uses opset 18
primitives only (Conv for the STFT, MatMul/Softmax attention, written-out RMSNorm), so the same file
runs on ORT CPU, converts to ORT Mobile's format and parses in TensorRT.

A model with ``feature_norm: speaker`` (enrollment) has one more output and two optional inputs, the
contract :func:`enrollment_section` writes into the manifest:

- ``feature_stats`` float32 (batch, 2, F): per clip and feature, the mean and the mean square of the
  features over the clip's frames, before normalisation. A speaker's profile is their average over the
  speaker's enrollment clips: mean = mean of [:, 0]; std = sqrt(max(mean of [:, 1] - mean^2, floor));
- ``speaker_mean``, ``speaker_std`` float32 (1 or batch, F): a speaker's profile. They are graph inputs
  with initializers (ONNX's optional inputs with a default): an app that feeds nothing gets the global
  training statistics, so the graph's required inputs stay the task's four and any runtime runs it.

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
from lexiedge_runtime.tasks import av_classification
from lexiedge_runtime.tasks.av_classification import (
    AUDIO_MASK,
    FEATURE_STATS,
    FRAMES,
    INPUT_NAMES,
    INPUTS,
    LOGITS,
    MODEL_OUTPUT_NAMES,
    OUTPUTS,
    SPEAKER_MEAN,
    SPEAKER_STD,
    VIDEO_MASK,
    WAVEFORM,
)

OUTPUT_NAMES = MODEL_OUTPUT_NAMES
OPSET = 18
# dynamic axes of each tensor, as the task declares them: name -> {axis: symbolic name}
DYNAMIC_AXES: dict[str, dict[int, str]] = {t.name: t.dynamic_axes for t in (*INPUTS, OUTPUTS[0])}
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


class _WithStatistics(torch.nn.Module):
    """The speaker-normalised model as the graph runs it: six inputs, (logits, feature_stats) out."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, waveform: torch.Tensor, frames: torch.Tensor, audio_mask: torch.Tensor,
                video_mask: torch.Tensor, speaker_mean: torch.Tensor, speaker_std: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        profile = (speaker_mean, speaker_std)
        return self.model.logits_and_statistics(waveform, frames, audio_mask, video_mask, *profile)


def speaker_normalised(model: torch.nn.Module) -> bool:
    return getattr(getattr(model, "settings", None), "feature_norm", None) == "speaker"


def enrollment_section(model: torch.nn.Module) -> dict:
    """The manifest's ``enrollment`` (the task's :class:`EnrollmentSection`): how an app turns a speaker's
    clips into the profile the graph takes."""
    return av_classification.enrollment_section(int(model.audio.frontend.feature_dim))


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
                if speaker_normalised(model):
                    program = _export_with_statistics(model, example_inputs, opset, n_fft, dynamic_image)
                else:
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
            if speaker_normalised(model):
                _default_to_global_statistics(temp_name, model)
    finally:
        model.train(was_training)
    return target


def _export_with_statistics(model: torch.nn.Module, example_inputs: tuple, opset: int, n_fft: int,
                            dynamic_image: bool):
    """The six-input, two-output graph of a speaker-normalised model (traced with the global statistics)."""
    frontend = model.audio.frontend
    batch = example_inputs[0].shape[0]
    mean = frontend.feature_mean.expand(batch, -1).contiguous()
    std = frontend.feature_std.expand(batch, -1).contiguous()
    shapes = dynamic_shapes(n_fft, dynamic_image=dynamic_image)
    shapes[SPEAKER_MEAN] = shapes[SPEAKER_STD] = {0: shapes[WAVEFORM][0]}
    wrapper = _WithStatistics(model).eval()
    return torch.onnx.export(
        wrapper, (*example_inputs, mean, std), dynamo=True, verbose=False,
        input_names=[*INPUT_NAMES, SPEAKER_MEAN, SPEAKER_STD], output_names=[LOGITS, FEATURE_STATS],
        opset_version=opset,
        dynamic_shapes={name: shapes[name] for name in (*INPUT_NAMES, SPEAKER_MEAN, SPEAKER_STD)},
        external_data=False, optimize=True,
    )


def _default_to_global_statistics(path: Path, model: torch.nn.Module) -> None:
    """Give the speaker inputs initializers (the global statistics, (1, F)): optional, with a default."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path))
    frontend = model.audio.frontend
    for name, value in ((SPEAKER_MEAN, frontend.feature_mean), (SPEAKER_STD, frontend.feature_std)):
        array = value.detach().cpu().numpy().astype(np.float32)[None]
        graph.graph.initializer.append(numpy_helper.from_array(array, name))
        declared = next(tensor for tensor in graph.graph.input if tensor.name == name)
        declared.type.tensor_type.shape.dim[0].dim_param = "speaker_batch"  # 1 (one profile) or batch
    onnx.save(graph, str(path))
