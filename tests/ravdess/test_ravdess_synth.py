"""`lexiedge data synth-av`: real mp4 files in the RAVDESS layout, deterministic, and learnable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from lexiedge_ravdess.labels import EMOTIONS, find_clips
from lexiedge_ravdess.loading import load_splits
from lexiedge_ravdess.synth import VIDEO_ENCODERS
from lexiedge_runtime.media.decode import DecodeOptions, decode_clip


def test_synth_av_command_writes_the_layout_deterministically(cli, tmp_path: Path) -> None:
    out = tmp_path / "a"
    result = cli("data", "synth-av", "--out", str(out), "--actors", "2", "--clips-per-emotion", "1",
                 "--seconds", "0.6", "--seed", "3", "--audio-only", "1")
    assert result.exit_code == 0, result.stderr
    assert f"wrote 32 clips to {out}" in result.stdout
    clips, problems = find_clips(out)
    assert problems == [] and len(clips) == 32
    assert sorted(p.name for p in out.iterdir()) == ["Actor_01", "Actor_02"]
    assert Counter((c.actor, c.modality) for c in clips) == {(1, 1): 8, (2, 1): 8, (1, 3): 8, (2, 3): 8}
    assert {c.emotion for c in clips} == set(range(len(EMOTIONS)))
    assert not [p for p in out.rglob(".*")], "no temp files left behind"

    again = tmp_path / "b"
    assert cli("data", "synth-av", "--out", str(again), "--actors", "2", "--clips-per-emotion", "1",
               "--seconds", "0.6", "--seed", "3", "--audio-only", "1").exit_code == 0
    for clip in clips:  # the same seed writes the same bytes
        assert (again / clip.path.relative_to(out)).read_bytes() == clip.path.read_bytes(), clip.path.name

    refused = cli("data", "synth-av", "--out", str(out), "--actors", "1")
    assert refused.exit_code == 2 and "not empty" in refused.stderr and "--force" in refused.stderr


def test_every_synthetic_file_is_a_real_media_file(synth_root: Path, synth_spec) -> None:
    clips, problems = find_clips(synth_root)
    assert problems == []
    expected = synth_spec.actors * len(EMOTIONS) * (synth_spec.clips_per_emotion + synth_spec.audio_only + synth_spec.video_only)
    assert len(clips) == expected
    layouts = set()
    for clip in clips:
        if clip.path.suffix == ".wav":
            info = soundfile.info(str(clip.path))
            layouts.add((info.samplerate, info.channels))
            continue
        with av.open(str(clip.path)) as container:
            assert container.streams.video[0].codec_context.name in {"h264", "mpeg4"}
            assert bool(container.streams.audio) == clip.has_audio
            if clip.has_audio:
                assert container.streams.audio[0].codec_context.name == "aac"
                assert container.streams.audio[0].rate == 48000
    assert layouts == {(16000, 1), (22050, 1), (48000, 2)}, "audio-only wavs cover the real data's layouts"
    assert VIDEO_ENCODERS[0] == "libx264"


def _audio_features(waveform: np.ndarray) -> list[float]:
    """Loudness, spectral centroid (brightness) and the dominant envelope rate (syllables per second)."""
    rms = np.sqrt(np.mean(waveform**2) + 1e-12)
    spectrum = np.abs(np.fft.rfft(waveform))
    centroid = (spectrum * np.fft.rfftfreq(len(waveform), 1 / 16000)).sum() / spectrum.sum()
    envelope = np.abs(waveform).reshape(-1, 160).mean(axis=1)  # 10 ms frames
    modulation = np.abs(np.fft.rfft(envelope - envelope.mean()))
    rate = np.fft.rfftfreq(len(envelope), 0.01)[1 + np.argmax(modulation[1:])]
    return [np.log(rms), np.log(centroid), rate]


def _video_features(frames: np.ndarray) -> list[float]:
    """Pixels of the mouth (dark red), eye whites and dark strokes (brows, pupils): scale-free enough."""
    rgb = frames.transpose(0, 2, 3, 1) * 255
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mouth = ((r > g + 50) & (r > b + 40) & (r < 200)).sum() / len(rgb)
    white = ((r > 215) & (g > 215) & (b > 215)).sum() / len(rgb)
    dark = ((r < 70) & (g < 70) & (b < 70)).sum() / len(rgb)
    return [np.log1p(mouth), np.log1p(white), np.log1p(dark)]


def _nearest_centroid_accuracy(train: list, test: list) -> float:
    x_train, y_train = np.array([f for f, _ in train]), np.array([y for _, y in train])
    x_test, y_test = np.array([f for f, _ in test]), np.array([y for _, y in test])
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    centroids = np.stack([((x_train[y_train == c] - mean) / std).mean(axis=0) for c in range(len(EMOTIONS))])
    distances = ((((x_test - mean) / std)[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return float((distances.argmin(axis=1) == y_test).mean())


def test_emotions_are_learnable_across_actors(synth_root: Path, tmp_path: Path, console, small_settings) -> None:
    """Three hand-made features per modality, a nearest-centroid classifier fitted on actors 1-4,
    scored on the unseen actors 5-6: far above chance (1/8) on each modality alone."""
    splits = load_splits(small_settings(), synth_root, cache_dir=tmp_path, console=console)
    features: dict[str, dict[str, list]] = {"audio": {"train": [], "test": []}, "video": {"train": [], "test": []}}
    for split_name, dataset in (("train", splits.train), ("test", splits.val), ("test", splits.test)):
        for index in range(len(dataset)):
            item = dataset[index]
            label = int(item["label"])
            if item["audio_mask"]:
                features["audio"][split_name].append((_audio_features(item["waveform"].numpy()), label))
            if item["video_mask"]:
                features["video"][split_name].append((_video_features(item["frames"].numpy()), label))
    by_emotion = {e: np.mean([f[0] for f, y in features["audio"]["train"] if y == e]) for e in range(len(EMOTIONS))}
    assert by_emotion[EMOTIONS.index("angry")] > by_emotion[EMOTIONS.index("neutral")] > by_emotion[EMOTIONS.index("sad")]
    for modality in ("audio", "video"):
        accuracy = _nearest_centroid_accuracy(features[modality]["train"], features[modality]["test"])
        assert accuracy > 0.4, f"{modality}: held-out actors {accuracy:.2f} (chance 0.125)"


@pytest.mark.parametrize("seconds", [0.5, 2.0])
def test_clip_length_follows_seconds(tmp_path: Path, seconds: float) -> None:
    from lexiedge_ravdess.synth import SynthSpec, write_synthetic_set

    report = write_synthetic_set(tmp_path, SynthSpec(actors=1, clips_per_emotion=1, seconds=seconds))
    clip = decode_clip(report.files[0], DecodeOptions(16000, 10.0, 2, 32, False, True, True))
    assert abs(clip.waveform.shape[0] - seconds * 16000) < 0.05 * 16000
    assert report.video_encoder in VIDEO_ENCODERS
