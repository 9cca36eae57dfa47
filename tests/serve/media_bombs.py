"""Small files that decode to far more than they weigh: what a hostile upload or a stray file in a data
folder looks like. Each is written with the real libraries (soundfile, PyAV) in a second or two.

* :func:`silent_flac` — minutes of silence in a FLAC of a few dozen KB (FLAC codes silence in a few
  bits per block);
* :func:`lie_about_length` — the same FLAC with a STREAMINFO that claims a short clip, so a decoder that
  trusts the header alone reads the whole thing;
* :func:`long_wav` — plain PCM, as a recorder writes it;
* :func:`video` — an H.264 mp4 of black frames: huge frames cost the encoder little, many tiny frames
  the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BLOCK_SECONDS = 10


def silent_flac(path: Path, seconds: float, *, rate: int = 16000, channels: int = 1) -> Path:
    import soundfile

    block = np.zeros((rate * BLOCK_SECONDS, channels), np.int16)
    with soundfile.SoundFile(
        str(path), "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16"
    ) as sink:
        for _ in range(round(seconds / BLOCK_SECONDS)):
            sink.write(block)
    return path


def lie_about_length(flac: Path, out: Path, claimed_samples: int) -> Path:
    """A copy of ``flac`` whose STREAMINFO says ``claimed_samples`` per channel (0: "unknown")."""
    data = bytearray(flac.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "STREAMINFO is the first metadata block"
    start = 8 + 10  # after the marker, the block header and the block/frame size fields
    packed = int.from_bytes(data[start : start + 8], "big")  # rate 20 bits, channels 3, bits 5, samples 36
    packed = (packed & ~((1 << 36) - 1)) | claimed_samples
    data[start : start + 8] = packed.to_bytes(8, "big")
    out.write_bytes(bytes(data))
    return out


def long_wav(path: Path, seconds: float, *, rate: int = 16000, channels: int = 1) -> Path:
    import soundfile

    block = np.zeros((rate * BLOCK_SECONDS, channels), np.int16)
    with soundfile.SoundFile(
        str(path), "w", samplerate=rate, channels=channels, format="WAV", subtype="PCM_16"
    ) as sink:
        for _ in range(round(seconds / BLOCK_SECONDS)):
            sink.write(block)
    return path


def video(path: Path, *, width: int, height: int, frames: int, fps: int) -> Path:
    """An mp4 of ``frames`` black frames of width x height at ``fps`` (libx264, the fastest settings)."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "51", "tune": "zerolatency", "threads": "1"}
        black = np.zeros((height * 3 // 2, width), np.uint8)
        black[height:] = 128  # neutral chroma
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(black, format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
