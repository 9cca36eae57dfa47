"""The LiteRT runner's fit of a clip to the graph's fixed length (numpy only, no model needed): what
training did to its clips, the centre of longer audio, shorter audio zero-padded at the end, frames
picked evenly."""

from __future__ import annotations

import numpy as np

from lexiedge_runtime.litert_runner import fit_clip


def feeds(samples: int, frames: int, batch: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "waveform": rng.uniform(-1, 1, (batch, samples)).astype(np.float32),
        "frames": rng.uniform(0, 1, (batch, frames, 3, 8, 8)).astype(np.float32),
        "audio_mask": np.array([1.0, 0.0][:batch], np.float32),
        "video_mask": np.array([0.0, 1.0][:batch], np.float32),
    }


def test_longer_audio_keeps_its_centre_and_more_frames_are_picked_evenly() -> None:
    given = feeds(1000, 12)
    fitted = fit_clip(given, 1, 600, 4)
    assert fitted["waveform"].shape == (1, 600) and fitted["frames"].shape == (1, 4, 3, 8, 8)
    np.testing.assert_array_equal(fitted["waveform"][0], given["waveform"][1, 200:800])
    np.testing.assert_array_equal(fitted["frames"][0], given["frames"][1, [1, 4, 7, 10]])
    assert fitted["audio_mask"].tolist() == [0.0] and fitted["video_mask"].tolist() == [1.0]


def test_shorter_audio_is_zero_padded_at_the_end_and_fewer_frames_repeat() -> None:
    given = feeds(300, 2)
    fitted = fit_clip(given, 0, 500, 4)
    np.testing.assert_array_equal(fitted["waveform"][0, :300], given["waveform"][0])
    assert not fitted["waveform"][0, 300:].any()
    np.testing.assert_array_equal(fitted["frames"][0], given["frames"][0, [0, 0, 1, 1]])


def test_a_clip_of_the_fixed_length_passes_unchanged() -> None:
    given = feeds(480, 4)
    fitted = fit_clip(given, 0, 480, 4)
    np.testing.assert_array_equal(fitted["waveform"], given["waveform"][:1])
    np.testing.assert_array_equal(fitted["frames"], given["frames"][:1])
