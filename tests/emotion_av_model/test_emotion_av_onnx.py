"""ONNX export: one trace shape, dynamic batch / samples / frames, onnxruntime matches PyTorch elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from emotion_av_helpers import build_tiny_settings, decode_clip, make_inputs

from lexiedge.errors import UsageError
from lexiedge_emotion_av.model import EmotionAVModel
from lexiedge_emotion_av.onnx_export import INPUT_NAMES, OPSET, export_onnx

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[EmotionAVModel, Path]:
    torch.manual_seed(0)
    model = EmotionAVModel(build_tiny_settings()).eval()
    folder = tmp_path_factory.mktemp("emotion-av-onnx")
    path = export_onnx(model, folder / "model.onnx", make_inputs(2, 12800, 3, seed=0, video_mask=[1, 0]))
    return model, path


def test_export_writes_one_valid_graph_with_named_dynamic_axes(exported) -> None:
    _, path = exported
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["model.onnx"], "no temp files left"
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    assert {o.domain or "ai.onnx": o.version for o in graph.opset_import}["ai.onnx"] == OPSET
    shapes = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input
    }
    assert list(shapes) == list(INPUT_NAMES)
    assert shapes["waveform"] == ["batch", "samples"]
    assert shapes["frames"][:2] == ["batch", "frames"] and shapes["frames"][2:] == [3, 32, 32]
    assert shapes["audio_mask"] == shapes["video_mask"] == ["batch"]
    ops = {node.op_type for node in graph.graph.node}
    assert "STFT" not in ops and "DFT" not in ops, (
        "the front end must be plain Conv for TensorRT / ORT Mobile"
    )
    assert {"Conv", "Log", "MatMul", "Softmax"} <= ops


@pytest.mark.parametrize(
    ("batch", "samples", "frames", "audio_mask", "video_mask"),
    [
        (1, 8000, 1, [1], [1]),
        (3, 20000, 5, [1, 0, 1], [1, 1, 0]),
        (3, 4000, 2, [0, 1, 1], [1, 1, 1]),
        (2, 12800, 3, [1, 1], [1, 0]),  # the trace shape itself
    ],
)
def test_onnxruntime_matches_pytorch_at_other_shapes(
    exported, inputs, batch: int, samples: int, frames: int, audio_mask: list, video_mask: list
) -> None:
    model, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    arrays = inputs(
        batch, samples, frames, seed=batch * samples + frames, audio_mask=audio_mask, video_mask=video_mask
    )
    with torch.no_grad():
        expected = model(*arrays).numpy()
    (logits,) = session.run(
        None, {name: array.numpy() for name, array in zip(INPUT_NAMES, arrays, strict=True)}
    )
    assert logits.shape == (batch, 8)
    assert np.abs(logits - expected).max() <= TOLERANCE
    assert np.abs(expected).max() > 0.05, "logits too small for the comparison to mean anything"
    if batch > 1:
        assert np.abs(logits[0] - logits[1]).max() > 1e-3


@pytest.mark.shared_data
def test_onnxruntime_matches_pytorch_on_a_real_clip(exported, shared_data: Path) -> None:
    clip = shared_data / "ravdess-av" / "Actor_01" / "01-01-01-01-01-01-01.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} is absent")
    model, path = exported
    waveform, frames = decode_clip(clip, frames=6, size=32)
    both = torch.ones(1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(waveform, frames, both, both).numpy()
    feeds = dict(
        zip(INPUT_NAMES, (waveform.numpy(), frames.numpy(), both.numpy(), both.numpy()), strict=True)
    )
    (logits,) = session.run(None, feeds)
    assert np.abs(logits - expected).max() <= TOLERANCE


def test_dynamic_image_size_export_runs_other_face_sizes(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = EmotionAVModel(build_tiny_settings()).eval()
    path = export_onnx(model, tmp_path / "any-size.onnx", make_inputs(2, 9600, 2, 48), dynamic_image=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in (32, 80):
        arrays = make_inputs(2, 8000, 3, size, seed=size)
        with torch.no_grad():
            expected = model(*arrays).numpy()
        (logits,) = session.run(None, {n: a.numpy() for n, a in zip(INPUT_NAMES, arrays, strict=True)})
        assert np.abs(logits - expected).max() <= TOLERANCE


def test_the_reslstm_on_mfcc_chroma_frames_exports_and_matches_at_other_lengths(tmp_path: Path) -> None:
    """ResLSTM-SA's recipe as settings: coarse MFCC + chroma frames, two LSTMs (ONNX LSTM ops), attention
    pooling and no fusion blocks; the graph takes any clip length and batch, as the Conformer's does."""
    torch.manual_seed(2)
    settings = build_tiny_settings(
        n_fft=1360, hop_length=680, n_mels=64, features="mfcc_chroma", n_mfcc=20,
        audio={"encoder": "reslstm", "dim": 32, "heads": 2},
        fusion={"audio_in": 32, "visual_in": 32, "hidden": 32, "layers": 0, "out": 16, "heads": 4,
                "kv_heads": 2, "pooling": "attention"},
    )
    model = EmotionAVModel(settings)
    model.train()
    model(*make_inputs(4, 16000, 2, seed=3))  # one training pass moves the BatchNorm's statistics off 0 / 1
    model.eval()
    path = export_onnx(model, tmp_path / "reslstm.onnx", make_inputs(2, 12800, 2, seed=4, video_mask=[1, 0]))
    graph = onnx.load(str(path))
    ops = [node.op_type for node in graph.graph.node]
    assert ops.count("LSTM") == 2 and "STFT" not in ops and "Loop" not in ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, samples in ((1, 8000), (3, 40000)):
        arrays = make_inputs(batch, samples, 2, seed=samples, video_mask=[0] * batch)
        with torch.no_grad():
            expected = model(*arrays).numpy()
        (logits,) = session.run(None, {n: a.numpy() for n, a in zip(INPUT_NAMES, arrays, strict=True)})
        assert np.abs(logits - expected).max() <= TOLERANCE
        assert np.abs(expected).max() > 0.05


def test_a_trace_shape_that_would_freeze_an_axis_is_refused(tiny_model, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="batch >= 2 and frames >= 2"):
        export_onnx(tiny_model, tmp_path / "model.onnx", make_inputs(1, 8000, 3))
    with pytest.raises(UsageError, match="batch >= 2 and frames >= 2"):
        export_onnx(tiny_model, tmp_path / "model.onnx", make_inputs(2, 8000, 1))
    assert not list(tmp_path.iterdir())
