"""Decoding one clip into model-ready arrays: mono audio at the target rate, face-cropped frames.

mp4 goes through PyAV (video frames and, when the file has one, the audio stream); wav through soundfile.
Both audio paths end in the same downmix and resampler, so a 48 kHz stereo wav and the AAC track of an
mp4 come out alike. Nothing here imports torch: preprocessing runs in worker processes.

This is the one decoder of the project: the ravdess data plugin's feature cache calls it for training
and evaluation, and the runtime's ``Classifier.predict_file`` for apps, with the options the
artifact's manifest recorded (:mod:`lexiedge_runtime.media.spec`). A change to what it outputs for the
same options bumps :data:`DECODER_VERSION` (artifacts record it; the runtime refuses another).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile

from lexiedge_runtime.errors import InputValueError
from lexiedge_runtime.media.faces import crop_and_resize, crop_box, detect_face, face_detector
from lexiedge_runtime.media.spec import DECODER_VERSION, DecodeOptions, MediaSpec

__all__ = ["DECODER_VERSION", "DecodeError", "DecodeOptions", "DecodedClip", "centre_fit", "decode_clip",
           "decode_file", "read_wav", "resample", "to_mono_rate", "uniform_indices"]


class DecodeError(Exception):
    """A clip that cannot be decoded; the message is one line saying why."""


@dataclass
class DecodedClip:
    """``waveform``: float32 (N,) in [-1, 1] at the target rate, at most clip_seconds of the options (centre part);
    ``frames``: uint8 (T, 3, size, size) RGB, channels first as the model reads them. None where the clip has
    no such stream or it was not asked for."""

    waveform: np.ndarray | None
    frames: np.ndarray | None
    face_found: bool | None = None


def decode_clip(path: Path, options: DecodeOptions) -> DecodedClip:
    """Decode ``path`` (.mp4 or .wav); raise :class:`DecodeError` with a one-line reason when it cannot."""
    try:
        if path.suffix.lower() == ".wav":
            waveform = read_wav(path, options.sample_rate) if options.audio else None
            clip = DecodedClip(waveform, None)
        else:
            clip = _read_mp4(path, options)
    except DecodeError:
        raise
    except (av.FFmpegError, soundfile.LibsndfileError, OSError, ValueError, RuntimeError) as exc:
        raise DecodeError(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if clip.waveform is not None:
        clip.waveform = centre_fit(clip.waveform, round(options.clip_seconds * options.sample_rate), pad=False)
    return clip


def decode_file(path: Path | str, spec: MediaSpec) -> dict[str, Any]:
    """A file as the model's evaluation data saw it: ``predict``'s keyword arguments.

    ``waveform``: the centre ``spec.clip_samples`` of the decoded audio, zero-padded (float32);
    ``frames``: uint8 (T, 3, size, size) face crops (``predict`` scales them by 1/255, as training
    did); ``sample_rate``. A stream the file lacks is left out. A missing or undecodable file, or one
    with no stream the model reads, raises :class:`~lexiedge_runtime.errors.InputValueError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputValueError(f"{path}: no such file" if not path.is_dir() else f"{path} is a directory, not a file")
    _check_detector(spec)
    try:
        clip = decode_clip(path, spec.options)
    except DecodeError as exc:
        raise InputValueError(f"{path}: cannot decode: {exc}") from None
    arrays: dict[str, Any] = {"sample_rate": spec.options.sample_rate}
    if clip.waveform is not None:
        arrays["waveform"] = centre_fit(clip.waveform, spec.clip_samples)
    if clip.frames is not None:
        arrays["frames"] = clip.frames
    if len(arrays) == 1:
        streams = [name for name, used in (("audio", spec.options.audio), ("video", spec.options.video)) if used]
        raise InputValueError(f"{path}: no audio or video stream this model reads (it reads {' and '.join(streams)})")
    return arrays


def _check_detector(spec: MediaSpec) -> None:
    """Warn when this OpenCV crops faces differently from the one training used (a Haar cascade or none)."""
    if not (spec.options.face_crop and spec.options.video and spec.face_detector):
        return
    ours = face_detector().name
    if ours.split(" ")[0] != spec.face_detector.split(" ")[0]:  # "haar (...)" vs "none: ..."
        warnings.warn(f"the model was trained with face detector {spec.face_detector!r} but this runtime has "
                      f"{ours!r}: its face crops may differ from training's (install opencv-python-headless < 5)",
                      UserWarning, stacklevel=3)


# --- audio -------------------------------------------------------------------------------------


def read_wav(path: Path, sample_rate: int) -> np.ndarray:
    """A wav file as float32 mono at ``sample_rate``."""
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (N, channels)
    if samples.shape[0] == 0:
        raise DecodeError("the wav file holds no samples")
    return to_mono_rate(samples.T, rate, sample_rate)


def to_mono_rate(planar: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """(channels, N) float audio at ``rate`` -> float32 (M,) mono at ``sample_rate``, clipped to [-1, 1].

    The channel mean keeps a centred voice at its level (a stereo recording of one speaker has it in both).
    """
    mono = np.ascontiguousarray(planar.mean(axis=0, dtype=np.float32))
    if rate != sample_rate:
        mono = resample(mono, rate, sample_rate)
    return np.clip(mono, -1.0, 1.0)


def resample(mono: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Band-limited resampling with FFmpeg's swresample (through PyAV); output length round(N * ratio)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    frame = av.AudioFrame.from_ndarray(mono[np.newaxis, :], format="flt", layout="mono")
    frame.sample_rate = rate
    chunks = [out.to_ndarray()[0] for out in resampler.resample(frame)]
    chunks += [out.to_ndarray()[0] for out in resampler.resample(None)]  # flush the filter's tail
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


def centre_fit(waveform: np.ndarray, length: int, *, pad: bool = True) -> np.ndarray:
    """The centre ``length`` samples; shorter clips are zero-padded at the end when ``pad``."""
    if waveform.shape[0] > length:
        start = (waveform.shape[0] - length) // 2
        return waveform[start : start + length]
    if pad and waveform.shape[0] < length:
        return np.pad(waveform, (0, length - waveform.shape[0]))
    return waveform


# --- mp4 ---------------------------------------------------------------------------------------


def uniform_indices(total: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over ``total`` frames (the centre of each of count segments)."""
    return [min(total - 1, int((i + 0.5) * total / count)) for i in range(count)]


def _count_video_frames(path: Path) -> int:
    """Frames in the first video stream, counted from packets when the container does not say."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size)


def _read_mp4(path: Path, options: DecodeOptions) -> DecodedClip:
    with av.open(str(path)) as container:
        has_video, has_audio = bool(container.streams.video), bool(container.streams.audio)
        if not has_video and not has_audio:
            raise DecodeError("the file has neither a video nor an audio stream")
        video = container.streams.video[0] if options.video and has_video else None
        audio = container.streams.audio[0] if options.audio and has_audio else None
        if video is None and audio is None:
            return DecodedClip(None, None)
        wanted: set[int] = set()
        if video is not None:
            video.thread_type = "AUTO"
            wanted = set(uniform_indices(max(1, _count_video_frames(path)), options.frames))
        kept: dict[int, np.ndarray] = {}
        last_frame: av.VideoFrame | None = None
        frame_index = 0
        audio_chunks: list[np.ndarray] = []
        audio_rate = 0
        # Normalise whatever sample format the codec gives (fltp for AAC, s16 for PCM) to planar float.
        to_planar = av.AudioResampler(format="fltp") if audio is not None else None
        streams = [s for s in (video, audio) if s is not None]
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    if frame_index in wanted:
                        kept[frame_index] = frame.to_ndarray(format="rgb24")
                    last_frame = frame
                    frame_index += 1
                elif isinstance(frame, av.AudioFrame) and to_planar is not None:
                    audio_rate = frame.sample_rate
                    audio_chunks.extend(out.to_ndarray() for out in to_planar.resample(frame))
        if to_planar is not None:
            audio_chunks.extend(out.to_ndarray() for out in to_planar.resample(None))
    waveform = None
    if audio is not None:
        if not audio_chunks:
            raise DecodeError("the audio stream decoded to no samples")
        waveform = to_mono_rate(np.concatenate(audio_chunks, axis=1), audio_rate, options.sample_rate)
    frames, face_found = None, None
    if video is not None:
        if last_frame is None:
            raise DecodeError("the video stream decoded to no frames")
        # A container that over-reports its frame count leaves the last picks unfilled: reuse the last frame.
        tail = last_frame.to_ndarray(format="rgb24")
        picked = [kept.get(index, tail) for index in sorted(wanted)]
        frames, face_found = _crop_frames(picked, options.frames, options.image_size, options.face_crop)
    return DecodedClip(waveform, frames, face_found)


def _crop_frames(picked: list[np.ndarray], count: int, size: int, face_crop: bool) -> tuple[np.ndarray, bool]:
    """uint8 (count, 3, size, size): one box for the whole clip so the face does not jump between frames."""
    if len(picked) < count:  # fewer frames in the clip than asked: repeat the nearest ones in time
        picked = [picked[int(i * len(picked) / count)] for i in range(count)]
    face = detect_face(picked) if face_crop else None
    height, width = picked[0].shape[:2]
    box = crop_box(height, width, face)
    crops = np.stack([crop_and_resize(frame, box, size) for frame in picked])
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2)), face is not None
