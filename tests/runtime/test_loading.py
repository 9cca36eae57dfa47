"""Loading: the sha256 check before anything is opened, device choice, and what a broken artifact says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lexiedge.errors import LexiedgeError
from lexiedge.runtime import (
    ArtifactError,
    ArtifactIntegrityError,
    Classifier,
    DeviceNotAvailableError,
    available_devices,
    load,
    sha256_file,
)


def _copy(artifact: Path, tmp_path: Path) -> Path:
    copy = tmp_path / artifact.name
    shutil.copytree(artifact, copy)
    return copy


def _flip_a_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_the_export_stage_hashes_with_the_runtime_s_helper(av_artifacts):
    """One sha256 helper for both layers: the manifest's hashes are what the runtime computes."""
    from lexiedge import export

    assert export.sha256_file is sha256_file
    manifest = json.loads((av_artifacts["onnx"] / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert sha256_file(av_artifacts["onnx"] / name) == entry["sha256"]


def test_a_changed_byte_in_the_graph_is_refused_before_loading(av_artifacts, tmp_path):
    copy = _copy(av_artifacts["onnx"], tmp_path)
    _flip_a_byte(copy / "model.onnx")
    with pytest.raises(ArtifactIntegrityError) as caught:
        load(copy)
    assert "model.onnx: sha256 mismatch" in str(caught.value) and str(copy) in str(caught.value)
    assert caught.value.problems == [p for p in caught.value.problems if p.startswith("model.onnx")]
    assert isinstance(caught.value, LexiedgeError)


def test_a_changed_llm_weight_file_or_tokenizer_is_refused(lm_artifacts, tmp_path):
    copy = _copy(lm_artifacts["onnx-int4"], tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    weights = sorted(name for name in manifest["files"] if name.startswith("model.onnx"))
    _flip_a_byte(copy / weights[-1])
    (copy / "tokenizer.json").write_text((copy / "tokenizer.json").read_text() + " ")
    with pytest.raises(ArtifactIntegrityError) as caught:
        load(copy)
    message = str(caught.value)
    assert f"{weights[-1]}: sha256 mismatch" in message and "tokenizer.json: sha256 mismatch" in message


def test_a_missing_file_is_named(av_artifacts, tmp_path):
    copy = _copy(av_artifacts["onnx"], tmp_path)
    (copy / "model.onnx").unlink()
    with pytest.raises(ArtifactIntegrityError, match="model.onnx: missing"):
        load(copy)


@pytest.mark.parametrize(
    ("break_it", "words"),
    [
        (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "unreadable manifest"),
        (lambda d: _edit_manifest(d, format="something-else"), "not a lexiedge manifest"),
        (lambda d: _edit_manifest(d, format_version=99), "format_version 99"),
        (lambda d: _edit_manifest(d, files={}), "lists no files"),
        (lambda d: _edit_manifest(d, task="object-detection"), "task 'object-detection' is not one this runtime runs"),
    ],
)
def test_a_broken_manifest_is_one_clear_error(av_artifacts, tmp_path, break_it, words):
    copy = _copy(av_artifacts["onnx"], tmp_path)
    break_it(copy)
    with pytest.raises(ArtifactError, match=words):
        load(copy)


def test_a_directory_that_is_no_artifact_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="no such artifact directory"):
        load(tmp_path / "absent")


def test_auto_takes_the_best_available_provider_and_threads_are_set(av_artifacts):
    model = load(av_artifacts["onnx"], threads=1)
    assert isinstance(model, Classifier)
    best = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
    assert model.provider == best[available_devices()[0]]
    assert model.session.get_session_options().intra_op_num_threads == 1
    explicit = load(av_artifacts["onnx"], providers=["CPUExecutionProvider"])
    assert explicit.session.get_providers() == ["CPUExecutionProvider"]


def test_a_device_that_is_not_available_names_the_available_ones(av_artifacts, lm_artifacts):
    missing = [device for device in ("tensorrt", "cuda") if device not in available_devices()]
    if not missing:
        pytest.skip("every device is available here")
    with pytest.raises(DeviceNotAvailableError) as caught:
        load(av_artifacts["onnx"], missing[-1])
    assert f"device {missing[-1]!r}" in str(caught.value)
    assert f"available devices: {', '.join(available_devices())}" in str(caught.value)
    with pytest.raises(DeviceNotAvailableError, match="cannot run a text-generation artifact") as caught:
        load(lm_artifacts["onnx-int4"], "cuda" if "cuda" in missing else "tensorrt")
    assert "available: " in str(caught.value) and "cpu" in str(caught.value)
    with pytest.raises(DeviceNotAvailableError, match="unknown device 'npu'"):
        load(av_artifacts["onnx"], "npu")
    with pytest.raises(DeviceNotAvailableError, match="not available in this onnxruntime build"):
        load(av_artifacts["onnx"], providers=["NoSuchExecutionProvider"])


def test_resampling_keeps_a_tone_at_its_frequency():
    """48 kHz -> 16 kHz and back up: a 440 Hz tone stays 440 Hz; one above 8 kHz is removed, not aliased."""
    from lexiedge.runtime.inputs import resample_fft

    seconds, rate = 1.0, 48000
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    down = resample_fft(tone, rate, 16000)
    assert down.shape == (1, 16000)
    spectrum = np.abs(np.fft.rfft(down[0]))
    assert np.argmax(spectrum) == 440  # 1 s of audio: bin k is k Hz
    high = (0.5 * np.sin(2 * np.pi * 12000 * t)).astype(np.float32)[None]
    assert np.abs(resample_fft(high, rate, 16000)).max() < 1e-3, "12 kHz cannot exist at 16 kHz: it must vanish"
    up = resample_fft(down, 16000, 22050)
    assert up.shape == (1, 22050) and np.argmax(np.abs(np.fft.rfft(up[0]))) == 440


def test_the_runtime_resampler_matches_ffmpeg_s_on_speech_like_audio():
    """The data plugin resamples with FFmpeg (swresample); ours agrees to within filter differences."""
    from lexiedge_runtime.media.decode import resample_swr

    from lexiedge.runtime.inputs import resample_fft

    rng = np.random.default_rng(0)
    rate = 48000
    t = np.arange(rate) / rate
    voice = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / k for k, f in enumerate((180, 360, 540, 900, 2500), 1))
    voice = (0.2 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    ours = resample_fft(voice[None], rate, 16000)[0]
    theirs = resample_swr(voice, rate, 16000)
    assert abs(len(ours) - len(theirs)) <= 1
    n = min(len(ours), len(theirs))
    middle = slice(200, n - 200)  # both treat the ends differently (periodic vs zero-padded filter)
    error = np.abs(ours[middle] - theirs[middle]).max()
    assert error < 0.02 * np.abs(theirs[middle]).max(), f"max difference {error}"


def test_stop_strings_are_held_back_until_they_can_no_longer_start():
    from lexiedge.runtime.chat import StopScanner

    scanner = StopScanner(["</s>", "STOP"])
    assert scanner.feed("Hello <") == ("Hello ", False)  # "<" may begin "</s>"
    assert scanner.feed("b") == ("<b", False)  # "<b" cannot: released
    assert scanner.feed(" ST") == (" ", False)
    assert scanner.feed("OPPED") == ("", True)  # "STOP" completed across pieces
    scanner = StopScanner(["STOP"])
    assert scanner.feed("no ST") == ("no ", False)
    assert scanner.flush() == "ST"


def _edit_manifest(directory: Path, **changes) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))
