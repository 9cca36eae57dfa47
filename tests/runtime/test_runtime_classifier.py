"""The classifier runtime on real artifacts: synth clips, real RAVDESS files, batches, single modalities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lexiedge.runtime import ClassificationResult, Classifier, load
from lexiedge_runtime.inputs import prepare_inputs

CHANCE = 1 / 8
RAVDESS_MP4 = Path("ravdess-av/Actor_01/01-01-01-01-01-01-01.mp4")
RAVDESS_WAV = Path("ravdess-speech/Actor_02/03-01-05-01-01-01-02.wav")  # 16 kHz mono, "angry"


@pytest.fixture(scope="module")
def classifier(av_artifacts: dict[str, Path]) -> Classifier:
    model = load(av_artifacts["onnx"], "cpu", threads=2)
    assert isinstance(model, Classifier)
    return model


def _decode(classifier: Classifier, path: Path) -> dict:
    from lexiedge.plugin import get_host

    preprocessing = classifier.manifest["preprocessing"]
    plugin = get_host().datasets.get(preprocessing["data_plugin"])
    return plugin.decode_for_inference(preprocessing["data_settings"], path)


def _check_distribution(result: ClassificationResult, labels: list[str]) -> None:
    assert list(result.probabilities) == labels
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.label == max(result.probabilities, key=result.probabilities.get) == labels[result.index]


def test_the_held_out_actor_is_classified_far_above_chance_as_in_training(classifier, test_clips, av_artifacts):
    predictions = [classifier.predict(**clip.arrays) for clip in test_clips]
    accuracy = np.mean([p.label == clip.label for p, clip in zip(predictions, test_clips)])
    assert accuracy >= 3 * CHANCE, f"accuracy {accuracy:.3f} on the held-out actor is not far above chance"
    # the trainer scored the same checkpoint on the same clips (decoded by the same code): same accuracy
    manifest = classifier.manifest
    run = Path(manifest["source"]["run"])
    trained = json.loads((run / "test_metrics.json").read_text())
    assert trained["samples"] == len(test_clips)
    assert accuracy == pytest.approx(trained["war"], abs=1e-6)
    for prediction in predictions:
        _check_distribution(prediction, classifier.labels)


def test_a_batch_gives_the_probabilities_of_its_clips_one_by_one(classifier, test_clips):
    clips = test_clips[:5]
    waveforms = np.stack([clip.arrays["waveform"] for clip in clips])
    frames = np.stack([clip.arrays["frames"] for clip in clips])
    batch = classifier.predict(waveforms, frames)
    assert isinstance(batch, list) and len(batch) == len(clips)
    for clip, batched in zip(clips, batch):
        single = classifier.predict(clip.arrays["waveform"], clip.arrays["frames"])
        assert isinstance(single, ClassificationResult)
        assert single.label == batched.label
        np.testing.assert_allclose(list(single.probabilities.values()), list(batched.probabilities.values()), atol=1e-5)


def test_audio_only_and_video_only_are_zeros_with_mask_zero_as_the_manifest_says(classifier, test_clips):
    clip = test_clips[0]
    waveform = clip.arrays["waveform"]
    frames = clip.arrays["frames"].astype(np.float32) / 255.0
    spec = classifier.spec
    zeros_audio = np.zeros((1, spec.clip_samples), np.float32)
    zeros_video = np.zeros((1, spec.frame_count, 3, spec.image_size, spec.image_size), np.float32)
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)

    audio_only = classifier.predict(waveform=waveform)
    _, expected = classifier.run(
        {"waveform": waveform[None], "frames": zeros_video, "audio_mask": one, "video_mask": zero})
    np.testing.assert_allclose(list(audio_only.probabilities.values()), expected[0], atol=1e-6)

    video_only = classifier.predict(frames=clip.arrays["frames"])
    _, expected = classifier.run(
        {"waveform": zeros_audio, "frames": frames[None], "audio_mask": zero, "video_mask": one})
    np.testing.assert_allclose(list(video_only.probabilities.values()), expected[0], atol=1e-6)

    both = classifier.predict(waveform, clip.arrays["frames"])
    assert not np.allclose(list(both.probabilities.values()), list(audio_only.probabilities.values()))
    assert not np.allclose(list(both.probabilities.values()), list(video_only.probabilities.values()))


def test_uint8_frames_are_scaled_like_training_and_float64_is_accepted(classifier, test_clips):
    clip = test_clips[1]
    as_uint8 = classifier.predict(clip.arrays["waveform"], clip.arrays["frames"])
    as_float = classifier.predict(clip.arrays["waveform"].astype(np.float64),
                                  clip.arrays["frames"].astype(np.float64) / 255.0)
    np.testing.assert_allclose(list(as_uint8.probabilities.values()), list(as_float.probabilities.values()), atol=1e-5)


@pytest.mark.shared_data
def test_real_ravdess_mp4_and_wav_files_are_classified(classifier, shared_data):
    mp4 = _decode(classifier, shared_data / RAVDESS_MP4)
    assert mp4["waveform"].shape == (classifier.spec.clip_samples,) and mp4["frames"].dtype == np.uint8
    spec = classifier.spec
    assert mp4["frames"].shape == (spec.frame_count, 3, spec.image_size, spec.image_size)
    _check_distribution(classifier.predict(**mp4), classifier.labels)

    wav = _decode(classifier, shared_data / RAVDESS_WAV)
    assert "frames" not in wav, "an audio-only wav has no video: the runtime fills zeros with mask 0"
    result = classifier.predict(**wav)
    _check_distribution(result, classifier.labels)
    np.testing.assert_allclose(  # the decoded wav is the same as reading it ourselves (16 kHz mono, centre crop)
        list(result.probabilities.values()),
        list(classifier.predict(_centre(soundfile.read(shared_data / RAVDESS_WAV, dtype="float32")[0],
                                        classifier.spec.clip_samples)).probabilities.values()),
        atol=1e-5,
    )


@pytest.mark.shared_data
def test_audio_at_another_rate_is_resampled_like_the_training_decoder(classifier, shared_data):
    """RAVDESS files at 22.05 and 48 kHz (stereo): the runtime's numpy resampling of the raw samples
    feeds the graph the waveform the data plugin's FFmpeg resampling gives, to within resampler
    differences. Compared on the waveform feed itself: a trained model's probabilities may hardly move
    with the audio (a synthetic run can lean on the faces), so they cannot tell a resampler from none."""
    for name in ("ravdess-speech/Actor_01/03-01-01-01-01-01-01.wav",  # 22.05 kHz mono
                 "ravdess-speech/Actor_01/03-01-02-01-01-02-01.wav"):  # 48 kHz stereo
        path = shared_data / name
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        assert rate != classifier.spec.sample_rate
        mono = samples.mean(axis=1)
        ours = _waveform_feed(classifier, mono, rate)  # the whole clip, resampled here
        ffmpeg = _waveform_feed(classifier, _uncropped_16k(path, classifier), classifier.spec.sample_rate)
        unresampled = _waveform_feed(classifier, mono, classifier.spec.sample_rate)
        assert abs(ours.shape[-1] - ffmpeg.shape[-1]) <= 2, "the whole clip at the model's rate either way"
        common = min(ours.shape[-1], ffmpeg.shape[-1])  # resamplers may round the last sample differently
        reference = ffmpeg[..., :common]
        # error energy relative to the signal's (measured: 0.008 and 0.04 here; not resampled: 1.5)
        ours_off = _rms(ours[..., :common] - reference) / _rms(reference)
        wrong_off = _rms(unresampled[..., :common] - reference) / _rms(reference)  # wrong pitch and pace
        assert ours_off < 0.1 and ours_off < 0.1 * wrong_off, (name, ours_off, wrong_off)
        np.testing.assert_allclose(  # and the model, fed either, answers alike (to the resamplers' difference)
            _probabilities(classifier.predict(mono, sample_rate=rate)),
            _probabilities(classifier.predict(ffmpeg[0])), atol=0.01)
        _check_distribution(classifier.predict(**_decode(classifier, path)), classifier.labels)


def test_the_io_binding_path_gives_the_plain_run_s_outputs(classifier, test_clips):
    """On CUDA/TensorRT predictions go through session.io_binding(); the same binding code on CPU memory
    must give exactly what session.run gives (the GPU test below runs it on the GPU when there is one)."""
    clip = test_clips[2]
    from lexiedge.runtime.inputs import prepare_inputs

    feeds = prepare_inputs(classifier.spec, clip.arrays["waveform"], clip.arrays["frames"]).feeds
    bound = classifier._run_bound(feeds, "cpu")
    plain = classifier.run(feeds)
    np.testing.assert_array_equal(bound["probabilities"], plain[1])
    np.testing.assert_array_equal(bound["logits"], plain[0])


def test_the_int8_artifact_runs_and_mostly_agrees_with_fp32(av_artifacts, classifier, test_clips):
    int8 = load(av_artifacts["onnx-int8"], "cpu")
    assert int8.manifest["target"] == "onnx-int8" and int8.labels == classifier.labels
    agree = [int8.predict(**c.arrays).label == classifier.predict(**c.arrays).label for c in test_clips]
    assert np.mean(agree) >= 0.75


def test_the_ort_format_artifact_gives_the_fp32_graph_s_probabilities(av_artifacts, classifier, test_clips):
    mobile = load(av_artifacts["ort-mobile"], "cpu")
    assert mobile.manifest["runtime"]["graph"].endswith(".ort")
    clip = test_clips[3]
    np.testing.assert_allclose(list(mobile.predict(**clip.arrays).probabilities.values()),
                               list(classifier.predict(**clip.arrays).probabilities.values()), atol=1e-4)


def test_a_gpu_device_runs_the_same_model_when_there_is_one(av_artifacts, classifier, test_clips):
    from lexiedge.runtime import available_devices

    if "cuda" not in available_devices():
        pytest.skip("no CUDAExecutionProvider in this onnxruntime build (CPU-only machine)")
    gpu = load(av_artifacts["onnx"], "cuda")
    assert gpu.provider == "CUDAExecutionProvider"
    clip = test_clips[0]
    np.testing.assert_allclose(list(gpu.predict(**clip.arrays).probabilities.values()),
                               list(classifier.predict(**clip.arrays).probabilities.values()), atol=1e-3)


def _probabilities(result: ClassificationResult) -> np.ndarray:
    return np.array(list(result.probabilities.values()))


def _rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))


def _waveform_feed(classifier: Classifier, waveform: np.ndarray, rate: int) -> np.ndarray:
    """The waveform the graph is fed for these samples at this rate (resampled, centre-cropped)."""
    return prepare_inputs(classifier.spec, waveform, sample_rate=rate).feeds["waveform"]


def _centre(waveform: np.ndarray, length: int) -> np.ndarray:
    start = max(0, (len(waveform) - length) // 2)
    return np.pad(waveform[start: start + length], (0, max(0, length - len(waveform))))


def _uncropped_16k(path: Path, classifier: Classifier) -> np.ndarray:
    """The whole file at the model's rate through the data plugin's own reader (FFmpeg's resampler)."""
    from lexiedge_runtime.media.decode import read_wav

    return read_wav(path, classifier.spec.sample_rate)
