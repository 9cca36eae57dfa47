"""OpenVINO as the backend of a real .onnx classifier artifact (a tiny emotion-av run exported by `lexiedge
export`): the same real clips through ONNX Runtime and through OpenVINO, at shapes the trace never had."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# find_spec, not importorskip: importing openvino into pytest's own process left its stderr closed for a later
# in-process `lexiedge serve` test (pytest died: "lost sys.stderr"); OpenVINO runs in child processes here.
if importlib.util.find_spec("openvino") is None:
    pytest.skip("openvino is not installed: pip install 'lexiedge-runtime[openvino]'", allow_module_level=True)

ATOL = 1e-4  # what the artifact was verified to against PyTorch (fp32)


# Runs in a process of its own: in pytest's process, OpenVINO's runtime left the process's stderr closed for a
# later in-process `lexiedge serve` test (pytest died with "lost sys.stderr"), an open finding (issue 29).
AGREEMENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    import lexiedge_runtime
    from lexiedge_runtime.openvino_runner import OpenVinoClassifier

    artifact, atol = Path(sys.argv[1]), float(sys.argv[2])


    def real_feeds(classifier, synth, samples, frame_count):
        # three real mp4 clips decoded as in training, cycled to the shape; the third without video
        clips = sorted(synth.rglob("*.mp4"))[:3]
        feeds = [classifier.file_feeds(clip) for clip in clips]
        waveform = np.stack([np.resize(feed["waveform"][0], samples) for feed in feeds])
        frames = np.stack([feed["frames"][0][np.arange(frame_count) % feed["frames"].shape[1]] for feed in feeds])
        frames[2] = 0.0
        return {"waveform": waveform.astype(np.float32), "frames": frames.astype(np.float32),
                "audio_mask": np.ones(3, np.float32), "video_mask": np.array([1.0, 1.0, 0.0], np.float32)}


    ort = lexiedge_runtime.load(artifact, "cpu")
    openvino = lexiedge_runtime.load(artifact, "openvino", threads=1)
    assert isinstance(openvino, OpenVinoClassifier) and openvino.provider == "OpenVINO CPU"
    synth, spec = artifact.parent / "synth", ort.spec
    shapes = ((spec.clip_samples, spec.frame_count), (spec.clip_samples // 3, 1),
              (spec.clip_samples * 2 + 17, spec.frame_count + 3))
    for samples, frame_count in shapes:
        feeds = real_feeds(ort, synth, samples, frame_count)
        (ort_logits, ort_probabilities), (ov_logits, ov_probabilities) = ort.run(feeds), openvino.run(feeds)
        assert ov_logits.shape == ort_logits.shape == (3, len(ort.labels))
        assert np.abs(ov_logits - ort_logits).max() <= atol, (samples, frame_count)
        assert np.abs(ov_probabilities - ort_probabilities).max() <= atol
    clip = sorted(synth.rglob("*.mp4"))[0]
    assert openvino.predict_file(clip).label == ort.predict_file(clip).label
    print("agree")
    """
)


def test_openvino_gives_onnx_runtimes_outputs_on_real_clips(small_av_artifact: Path, tmp_path: Path) -> None:
    script = tmp_path / "agreement.py"
    script.write_text(AGREEMENT)
    result = subprocess.run(
        [sys.executable, str(script), str(small_av_artifact), str(ATOL)], capture_output=True, text=True,
        timeout=600,
    )
    assert result.returncode == 0 and result.stdout.strip() == "agree", result.stderr[-3000:]


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


def test_bench_runs_openvino_beside_onnx_runtime_when_asked(small_av_artifact: Path, tmp_path: Path) -> None:
    """Behaviour only (which backends ran, on which artifact): timings on a shared machine are not checked.

    `lexiedge bench` runs as a user runs it, in a process of its own: run inside pytest's process, a bench
    with OpenVINO left that process's stderr closed (pytest then died at a later test: "lost sys.stderr"),
    an open finding (issue 29's note)."""
    import json

    def bench(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "lexiedge", "bench", str(small_av_artifact), *args]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    out = tmp_path / "bench"
    fast = ["--warmup", "1", "--iterations", "2", "--rounds", "1", "--threads", "1"]
    result = bench("--backends", "ort,openvino", *fast, "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "bench.json").read_text())
    assert [backend["name"] for backend in report["backends"]] == ["ort", "openvino"]
    assert all(backend["latency_ms"]["p50"] > 0 for backend in report["backends"])
    default = bench("--backends", "ort,tensorrt", *fast, "--out", str(tmp_path / "x"))
    assert default.returncode == 2 and "available: torch, ort, openvino" in default.stderr
