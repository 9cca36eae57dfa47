"""OpenVINO as the backend of a real .onnx classifier artifact (a tiny emotion-av run exported by `lexiedge
export`): the same real clips through ONNX Runtime and through OpenVINO, at shapes the trace never had."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino", reason="openvino is not installed: pip install 'lexiedge-runtime[openvino]'")

ATOL = 1e-4  # what the artifact was verified to against PyTorch (fp32)


def real_feeds(classifier, synth: Path, samples: int, frame_count: int) -> dict[str, np.ndarray]:
    """Three real mp4 clips decoded as in training, their audio cycled to ``samples`` and their frames to
    ``frame_count`` (the runtime's own decoder; the third clip without video)."""
    clips = sorted(synth.rglob("*.mp4"))[:3]
    feeds = [classifier.file_feeds(clip) for clip in clips]
    waveform = np.stack([np.resize(feed["waveform"][0], samples) for feed in feeds])
    frames = np.stack([feed["frames"][0][np.arange(frame_count) % feed["frames"].shape[1]] for feed in feeds])
    video_mask = np.array([1.0, 1.0, 0.0], np.float32)
    frames[2] = 0.0
    return {
        "waveform": waveform.astype(np.float32),
        "frames": frames.astype(np.float32),
        "audio_mask": np.ones(3, np.float32),
        "video_mask": video_mask,
    }


def test_openvino_gives_onnx_runtimes_outputs_on_real_clips(small_av_artifact: Path) -> None:
    import lexiedge_runtime
    from lexiedge_runtime.openvino_runner import OpenVinoClassifier

    ort = lexiedge_runtime.load(small_av_artifact, "cpu")
    openvino = lexiedge_runtime.load(small_av_artifact, "openvino", threads=1)
    assert isinstance(openvino, OpenVinoClassifier) and openvino.provider == "OpenVINO CPU"
    synth = small_av_artifact.parent / "synth"
    spec = ort.spec
    for samples, frame_count in (
        (spec.clip_samples, spec.frame_count),
        (spec.clip_samples // 3, 1),
        (spec.clip_samples * 2 + 17, spec.frame_count + 3),
    ):
        feeds = real_feeds(ort, synth, samples, frame_count)
        (ort_logits, ort_probabilities), (ov_logits, ov_probabilities) = ort.run(feeds), openvino.run(feeds)
        assert ov_logits.shape == ort_logits.shape == (3, len(ort.labels))
        assert np.abs(ov_logits - ort_logits).max() <= ATOL, (samples, frame_count)
        assert np.abs(ov_probabilities - ort_probabilities).max() <= ATOL
    clip = sorted(synth.rglob("*.mp4"))[0]
    assert openvino.predict_file(clip).label == ort.predict_file(clip).label


def test_device_openvino_refuses_onnx_runtime_providers(small_av_artifact: Path) -> None:
    import lexiedge_runtime

    with pytest.raises(lexiedge_runtime.InputValueError, match="device 'openvino' takes none"):
        lexiedge_runtime.load(small_av_artifact, "openvino", providers=["CPUExecutionProvider"])


WITHOUT_OPENVINO = textwrap.dedent(
    """
    import importlib.util, sys
    real = importlib.util.find_spec
    hidden = "openvino"
    importlib.util.find_spec = lambda name, *rest: None if name.split(".")[0] == hidden else real(name, *rest)
    import lexiedge_runtime  # an interpreter where openvino is not installed
    try:
        lexiedge_runtime.load(sys.argv[1], "openvino")
    except lexiedge_runtime.MissingExtraError as exc:
        print("refused:", exc)
    """
)


def test_without_openvino_the_runtime_names_the_extra(small_av_artifact: Path, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(WITHOUT_OPENVINO)
    result = subprocess.run(
        [sys.executable, str(script), str(small_av_artifact)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == (
        "refused: running a classifier on OpenVINO (device='openvino') needs openvino (not installed): "
        "pip install 'lexiedge-runtime[openvino]'"
    )


def test_bench_runs_openvino_beside_onnx_runtime_when_asked(cli, small_av_artifact: Path, tmp_path: Path) -> None:
    """Behaviour only (which backends ran, on which artifact): timings on a shared machine are not checked."""
    import json

    out = tmp_path / "bench"
    fast = ["--warmup", "1", "--iterations", "2", "--rounds", "1", "--threads", "1"]
    result = cli("bench", str(small_av_artifact), "--backends", "ort,openvino", *fast, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "bench.json").read_text())
    assert [backend["name"] for backend in report["backends"]] == ["ort", "openvino"]
    assert all(backend["latency_ms"]["p50"] > 0 for backend in report["backends"])
    default = cli("bench", str(small_av_artifact), "--backends", "ort,tensorrt", *fast, "--out", str(tmp_path / "x"))
    assert default.exit_code == 2 and "available: torch, ort, openvino" in default.stderr
