"""Decompression bombs sent to `POST /v1/emotion` are refused with 413, and the server keeps its memory.

The files are real (media_bombs.py): 40 minutes of silence in a 60 KB FLAC, the same FLAC with a
header claiming one second, a 5K-frame mp4. Against ``open_server`` (no key), a process of its own
whose resident memory is read from /proc before and after (Linux).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from media_bombs import lie_about_length, silent_flac, video
from serve_helpers import rss_mb, upload

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status (Linux)"
)
MEMORY_BOUND_MB = 100  # growth allowed over ten bombs: the bounded decode of one is a few MB


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM line")


def _noise_wav(seconds: float) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(
        buffer,
        np.random.default_rng(1).uniform(-0.3, 0.3, round(seconds * 16000)).astype(np.float32),
        16000,
        format="WAV",
        subtype="PCM_16",
    )
    return buffer.getvalue()


def test_bombs_get_413_and_the_server_keeps_its_memory(open_server, tmp_path):
    honest = silent_flac(tmp_path / "silence.flac", 2400)
    bombs = {
        "silence.flac": honest.read_bytes(),
        "liar.flac": lie_about_length(honest, tmp_path / "liar.flac", 16000).read_bytes(),
        "huge.mp4": video(tmp_path / "huge.mp4", width=5120, height=2880, frames=2, fps=1).read_bytes(),
    }
    clip = _noise_wav(2.0)
    first = upload(open_server, "clip.wav", clip, key=None)
    assert first.status == 200, first.body  # codecs loaded: what a served model weighs
    before, peak_before = rss_mb(open_server.process), _peak_mb(open_server.process.pid)
    for _ in range(3):
        for name, data in bombs.items():
            reply = upload(open_server, name, data, key=None)
            assert reply.status == 413, (name, reply.status, reply.body[:300])
            error = reply.json()["error"]
            assert error["code"] == "input_too_large" and "\n" not in error["message"]
            assert name in error["message"] and "lexiedge-upload" not in error["message"]
    grown, peaked = rss_mb(open_server.process) - before, _peak_mb(open_server.process.pid) - peak_before
    assert grown < MEMORY_BOUND_MB and peaked < MEMORY_BOUND_MB, (grown, peaked)
    again = upload(open_server, "clip.wav", clip, key=None)
    assert again.status == 200 and again.json()["probabilities"] == first.json()["probabilities"]
