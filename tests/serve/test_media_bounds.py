"""Decoding is bounded by what the model reads: a small file that expands to minutes of audio or to huge
video frames is refused from its header, and a header that lies is caught while decoding.

The one decoder (lexiedge_runtime.media.decode) serves `predict_file`, the server's uploads and
training's feature cache; these tests drive it through the first and the last with real files
written by soundfile and PyAV (media_bombs.py). The server's answer to the same files is in
test_exposure.py. Peak memory is read from a child process's own accounting (ru_maxrss).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from lexiedge_runtime import load
from lexiedge_runtime.errors import InputValueError
from media_bombs import lie_about_length, long_wav, silent_flac, video

REPO = Path(__file__).resolve().parents[2]
# The small artifact reads 3 s clips: its manifest's max_input_seconds is 30 s (10x the clip); video
# may have at most 30 s x 120 fps = 3600 frames of at most 4096x2160 pixels.
MAX_SECONDS = 30


@pytest.fixture(scope="module")
def emotion(small_av_artifact):
    return load(small_av_artifact, "cpu", threads=1)


def test_the_bound_is_the_manifests_max_input_seconds(emotion):
    assert emotion.spec.max_input_seconds == MAX_SECONDS


def test_forty_minutes_of_silence_in_a_small_flac_is_refused_from_its_header(emotion, tmp_path):
    bomb = silent_flac(tmp_path / "silence.flac", 2400)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(InputValueError) as refused:
        emotion.predict_file(bomb)
    message = str(refused.value)
    assert type(refused.value).__name__ == "InputTooLargeError"
    assert "\n" not in message and "2400.0 s" in message and f"{MAX_SECONDS} s" in message
    assert "max_input_seconds" in message and str(bomb) in message


def test_a_flac_whose_header_lies_is_stopped_at_the_bound(emotion, tmp_path):
    honest = silent_flac(tmp_path / "silence.flac", 600)
    for claimed in (16000, 0):  # one second, and "length unknown"
        liar = lie_about_length(honest, tmp_path / f"claims-{claimed}.flac", claimed)
        with pytest.raises(InputValueError, match=rf"more than {MAX_SECONDS} s") as refused:
            emotion.predict_file(liar)
        assert type(refused.value).__name__ == "InputTooLargeError"


def test_a_clip_within_the_bound_is_still_classified(emotion, tmp_path):
    import soundfile

    noise = np.random.default_rng(0).uniform(-0.3, 0.3, 28 * 16000).astype(np.float32)
    soundfile.write(tmp_path / "28s.flac", noise, 16000)
    assert emotion.predict_file(tmp_path / "28s.flac").label in emotion.labels


def test_video_frames_over_the_pixel_bound_are_refused_before_decoding(emotion, tmp_path):
    clip = video(tmp_path / "huge.mp4", width=5120, height=2880, frames=2, fps=1)
    with pytest.raises(InputValueError, match=r"5120x2880") as refused:
        emotion.predict_file(clip)
    assert type(refused.value).__name__ == "InputTooLargeError" and "4096x2160" in str(refused.value)


def test_a_video_of_too_many_frames_is_refused(emotion, tmp_path):
    clip = video(tmp_path / "many.mp4", width=32, height=32, frames=4000, fps=4000)  # 1 s, 4000 frames
    with pytest.raises(InputValueError, match=r"4000 frames") as refused:
        emotion.predict_file(clip)
    assert type(refused.value).__name__ == "InputTooLargeError"
    slow = video(tmp_path / "long.mp4", width=32, height=32, frames=40, fps=1)  # 40 s of video
    with pytest.raises(InputValueError, match=r"40\.0 s"):
        emotion.predict_file(slow)


# --- training's loader ---------------------------------------------------------------------------------


TRAINING_BOUND_S = 60  # the default ravdess settings keep 6 s of each clip; the bound is 10x that


def _training_options():
    from lexiedge_ravdess.preprocessing import decode_options
    from lexiedge_ravdess.settings import RavdessSettings

    return decode_options(RavdessSettings())


def test_the_feature_cache_skips_a_twenty_minute_wav_with_the_reason(tmp_path):
    from lexiedge_ravdess.cache import decode_and_store

    options = _training_options()  # keeps 6 s around each clip's centre (3 s clips, random crops): 60 s
    assert options.clip_seconds * 10 == TRAINING_BOUND_S
    wav = long_wav(tmp_path / "03-01-05-01-01-01-01.wav", 1200)
    meta = decode_and_store((tmp_path, "key", wav, options))
    assert meta["ok"] is False and meta["audio"] is None
    assert (
        "1200.0 s" in meta["error"] and f"{TRAINING_BOUND_S} s" in meta["error"] and "\n" not in meta["error"]
    )


PEAK_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from lexiedge_ravdess.preprocessing import decode_options
    from lexiedge_ravdess.settings import RavdessSettings
    from lexiedge_runtime.media.decode import DecodeError, decode_clip

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        decode_clip(Path(sys.argv[1]), decode_options(RavdessSettings()))
        outcome = "decoded"
    except DecodeError as exc:
        outcome = str(exc)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"outcome": outcome, "grew_mb": (after - before) / 1024}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB is Linux's")
@pytest.mark.parametrize("kind", ["wav", "flac-named-wav-of-unknown-length"])
def test_decoding_a_long_file_for_training_stays_small(tmp_path, kind):
    """A 20-minute recording: 38 MB of PCM, or a FLAC behind a .wav name whose header gives no length
    (libsndfile reads a FLAC whatever its name says)."""
    if kind == "wav":
        path = long_wav(tmp_path / "long.wav", 1200)
    else:
        flac = silent_flac(tmp_path / "long.flac", 1200, rate=48000, channels=2)
        path = lie_about_length(flac, tmp_path / "long.wav", 0)
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True, timeout=600, cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] != "decoded" and f"{TRAINING_BOUND_S} s" in report["outcome"], report
    # 20 minutes decoded whole is 77 MB of float32 at 16 kHz mono, 460 MB at 48 kHz stereo
    assert report["grew_mb"] < 40, report
