"""Real RAVDESS files from ../shared/data through the training code path (skipped when the folder is absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from rich.console import Console

from lexiedge_ravdess.loading import load_splits
from lexiedge_ravdess.settings import RavdessSettings, SplitSettings
from lexiedge_runtime.media.decode import DecodeOptions, decode_clip
from lexiedge_runtime.media.faces import face_detector

pytestmark = pytest.mark.shared_data

AV_CLIP = Path("ravdess-av/Actor_01/01-01-01-01-01-01-01.mp4")


@pytest.fixture
def real_mp4(shared_data: Path) -> Path:
    path = shared_data / AV_CLIP
    if not path.is_file():
        pytest.skip(f"{path} is absent (see ../shared/data/README.md)")
    return path


def test_real_mp4_decodes_to_16k_mono_and_face_frames(real_mp4: Path) -> None:
    options = DecodeOptions(sample_rate=16000, clip_seconds=5.0, frames=8, image_size=64, face_crop=True,
                            audio=True, video=True)
    clip = decode_clip(real_mp4, options)
    with av.open(str(real_mp4)) as container:
        duration = container.duration / 1_000_000
        assert container.streams.audio[0].rate == 48000  # the distribution's AAC rate: we resample
    assert clip.waveform is not None and clip.waveform.dtype == np.float32 and clip.waveform.ndim == 1
    # 3.3 s at 16 kHz (the 5 s limit does not crop it); AAC adds at most a few ms of priming samples.
    assert abs(clip.waveform.shape[0] - duration * 16000) < 0.02 * 16000
    assert np.abs(clip.waveform).max() <= 1.0
    rms = float(np.sqrt(np.mean(clip.waveform**2)))
    assert rms > 1e-3, "the actor speaks: the audio is not silent"
    assert clip.frames is not None and clip.frames.shape == (8, 3, 64, 64) and clip.frames.dtype == np.uint8
    assert clip.frames.std() > 10, "a face, not a blank image"
    assert np.abs(np.diff(clip.frames.astype(np.float32), axis=0)).mean() > 0.5, "frames change over time"
    if face_detector().cascade is not None:
        assert clip.face_found, "the Haar cascade finds the actor's face"


def test_real_mp4_is_centre_cropped_when_face_crop_is_off(real_mp4: Path) -> None:
    options = DecodeOptions(16000, 3.0, 2, 32, face_crop=False, audio=False, video=True)
    clip = decode_clip(real_mp4, options)
    assert clip.waveform is None and clip.frames.shape == (2, 3, 32, 32) and clip.face_found is False


def _one_wav_per_layout(speech: Path) -> dict[tuple[int, int], Path]:
    layouts: dict[tuple[int, int], Path] = {}
    for path in sorted(speech.rglob("*.wav")):
        info = soundfile.info(str(path))
        layouts.setdefault((info.samplerate, info.channels), path)
    return layouts


def test_real_wavs_of_every_rate_and_layout_load_as_training_examples(
    shared_data: Path, tmp_path: Path, console: Console
) -> None:
    speech = shared_data / "ravdess-speech"
    if not speech.is_dir():
        pytest.skip(f"{speech} is absent (see ../shared/data/README.md)")
    layouts = _one_wav_per_layout(speech)
    assert {(16000, 1), (22050, 1), (48000, 2)} <= set(layouts), f"layouts found: {sorted(layouts)}"
    data = tmp_path / "data"
    for path in layouts.values():  # the real files, in a folder of their own so the test loads only these
        (data / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, data / path.parent.name / path.name)
    actors = sorted({int(p.parent.name.split("_")[1]) for p in layouts.values()})
    settings = RavdessSettings(clip_seconds=8.0, frames=2, image_size=32, split=SplitSettings(train=actors))
    splits = load_splits(settings, data, cache_dir=tmp_path / "cache", console=console, workers=0)
    assert splits.summary["clips"]["train"] == len(layouts)
    by_name = {clip.path.name: index for index, clip in enumerate(splits.train.clips)}
    for (rate, channels), path in layouts.items():
        item = splits.train[by_name[path.name]]
        samples, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        expected = samples.mean(axis=1)
        seconds = len(expected) / file_rate
        waveform = item["waveform"].numpy()
        assert waveform.shape == (settings.num_samples,) and item["audio_mask"] == 1.0 and item["video_mask"] == 0.0
        assert not item["frames"].any(), "an audio-only wav has no frames"
        voiced = round(seconds * 16000)
        assert not np.any(waveform[voiced + 2 :]), "zero padding after the clip"
        # Resampled to 16 kHz, the downmixed recording keeps its level (within 5%: band-limiting drops a little).
        rms_in, rms_out = np.sqrt(np.mean(expected**2)), np.sqrt(np.mean(waveform[:voiced] ** 2))
        assert rms_out == pytest.approx(rms_in, rel=0.05), f"{rate} Hz x{channels}: {path.name}"
        assert rms_out > 1e-3, f"{path.name} is not silent"
