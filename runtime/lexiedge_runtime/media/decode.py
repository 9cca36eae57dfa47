"""Decoding one clip into model-ready arrays: mono audio at the target rate, face-cropped frames.

mp4 goes through PyAV (video frames and, when the file has one, the audio stream); wav through soundfile.
Both audio paths end in the same downmix and resampler, so a 48 kHz stereo wav and the AAC track of an
mp4 come out alike. Nothing here imports torch: preprocessing runs in worker processes.

This is the one decoder of the project: the ravdess data plugin's feature cache calls it for training
and evaluation, and the runtime's ``Classifier.predict_file`` for apps, with the options the
artifact's manifest recorded (:mod:`lexiedge_runtime.media.spec`). A change to what it outputs for the
same options bumps :data:`DECODER_VERSION` (artifacts record it; the runtime refuses another).

Decoding is bounded (:class:`DecodeLimits`), because a small file can expand without end: a 0.4 MB
FLAC holds 40 minutes of silence, a 200 KB mp4 frames of 8192x8192. The bound comes from what the
model reads: ``preprocessing.max_input_seconds`` for ``predict_file`` (and the server), 10x the
window training keeps for the feature cache. A file over it is refused from its header before
anything is decoded, and decoding stops as soon as it passes the bound (a header can lie, or say
nothing): :class:`DecodeLimitError`, one line. Audio is mixed down to mono as it is decoded, so its
memory is that of one channel at the file's rate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile

from lexiedge_runtime.errors import InputTooLargeError, InputValueError
from lexiedge_runtime.inputs import centre_fit, uniform_indices  # numpy only: fixed-length runners use them too
from lexiedge_runtime.tasks.av_classification import MAX_INPUT_FACTOR, MAX_SAMPLE_RATE
from lexiedge_runtime.media.faces import crop_and_resize, crop_box, detect_face, face_detector
from lexiedge_runtime.media.spec import DECODER_VERSION, DecodeOptions, MediaSpec

__all__ = ["DECODER_VERSION", "DecodeError", "DecodeLimitError", "DecodeLimits", "DecodeOptions",
           "DecodedClip", "centre_fit", "decode_clip", "decode_file", "downmix", "read_wav", "resample_swr",
           "to_mono_rate", "uniform_indices"]

MAX_FRAME_WIDTH, MAX_FRAME_HEIGHT = 4096, 2160  # DCI 4K: the largest a phone or a camera records
MAX_FRAME_RATE = 120  # frames per second of video at most (high-speed phone video)
MAX_AUDIO_CHANNELS = 32
MAX_DECODE_SECONDS = 3600.0  # read_wav's bound when the caller names none (a manifest's largest)
# Decoders may hand out a little more than a header's duration (encoder priming, the last frame's
# padding): the bound checked while decoding allows this much over max_seconds.
CODEC_SLACK_S = 0.5
WAV_BLOCK_FRAMES = 1 << 16  # soundfile reads this many frames at a time (x channels x 4 bytes)


class DecodeError(Exception):
    """A clip that cannot be decoded; the message is one line saying why."""


class DecodeLimitError(DecodeError):
    """A clip over a :class:`DecodeLimits` bound: from its header, or found while decoding it.

    ``bound``: which one, ``"seconds"`` (the duration), ``"frame_size"``, ``"frames"`` or ``"audio"``
    (channels, rate)."""

    def __init__(self, message: str, bound: str) -> None:
        super().__init__(message)
        self.bound = bound


@dataclass(frozen=True)
class DecodeLimits:
    """The most one clip may decode to; everything else about the file is the codec's business.

    ``max_seconds`` bounds the audio and the video stream's duration; video frames are at most
    ``max_frame_width`` x ``max_frame_height`` pixels (as many pixels in any shape) and at most
    ``max_seconds`` x ``max_frame_rate`` of them; audio has at most :data:`MAX_AUDIO_CHANNELS`
    channels and :data:`~lexiedge_runtime.tasks.av_classification.MAX_SAMPLE_RATE` Hz.
    """

    max_seconds: float
    max_frame_width: int = MAX_FRAME_WIDTH
    max_frame_height: int = MAX_FRAME_HEIGHT
    max_frame_rate: int = MAX_FRAME_RATE

    @classmethod
    def for_options(cls, options: DecodeOptions) -> DecodeLimits:
        """Training's bound: ``MAX_INPUT_FACTOR`` (the task's, 10) times the window it keeps."""
        return cls(options.clip_seconds * MAX_INPUT_FACTOR)

    @property
    def max_video_frames(self) -> int:
        return math.ceil(self.max_seconds * self.max_frame_rate)

    def check_duration(self, seconds: float, stream: str) -> None:
        if seconds > self.max_seconds:
            raise DecodeLimitError(f"the {stream} is {seconds:.1f} s long, over the bound of "
                                   f"{self.max_seconds:g} s: split longer recordings into clips", "seconds")

    def check_decoded(self, seconds: float, stream: str) -> None:
        """While decoding: past the bound (with the codecs' slack), whatever the header said."""
        if seconds > self.max_seconds + CODEC_SLACK_S:
            raise DecodeLimitError(f"the {stream} decodes to more than {self.max_seconds:g} s (its header "
                                   "did not say so): split longer recordings into clips", "seconds")

    def check_audio_format(self, rate: int, channels: int) -> None:
        """``rate`` 0: not said (yet)."""
        if rate > MAX_SAMPLE_RATE:
            raise DecodeLimitError(f"the audio's sample rate is {rate} Hz, over the bound of "
                                   f"{MAX_SAMPLE_RATE} Hz", "audio")
        if channels > MAX_AUDIO_CHANNELS:
            raise DecodeLimitError(f"the audio has {channels} channels, over the bound of "
                                   f"{MAX_AUDIO_CHANNELS}", "audio")

    def check_frame_size(self, width: int, height: int) -> None:
        most = self.max_frame_width * self.max_frame_height
        if width * height > most:
            raise DecodeLimitError(
                f"video frames are {width}x{height} ({width * height / 1e6:.1f} MP), over the bound of "
                f"{self.max_frame_width}x{self.max_frame_height} ({most / 1e6:.1f} MP): scale the video down",
                "frame_size",
            )

    def check_frame_count(self, frames: int, *, counting: bool = False) -> None:
        """``counting``: ``frames`` were found so far (decoded or demuxed), whatever the header said."""
        if frames > self.max_video_frames:
            count = f"more than {self.max_video_frames}" if counting else str(frames)
            raise DecodeLimitError(f"the video has {count} frames, over the bound of {self.max_video_frames} "
                                   f"({self.max_seconds:g} s at {self.max_frame_rate} fps)", "frames")


@dataclass
class DecodedClip:
    """``waveform``: float32 (N,) in [-1, 1] at the target rate, at most clip_seconds of the options (centre part);
    ``frames``: uint8 (T, 3, size, size) RGB, channels first as the model reads them. None where the clip has
    no such stream or it was not asked for."""

    waveform: np.ndarray | None
    frames: np.ndarray | None
    face_found: bool | None = None


def decode_clip(path: Path, options: DecodeOptions, limits: DecodeLimits | None = None) -> DecodedClip:
    """Decode ``path`` (.mp4 or .wav); raise :class:`DecodeError` with a one-line reason when it cannot
    (:class:`DecodeLimitError` when it is over ``limits``, by default training's: 10x the window kept)."""
    limits = limits or DecodeLimits.for_options(options)
    try:
        if path.suffix.lower() == ".wav":
            waveform = read_wav(path, options.sample_rate, limits) if options.audio else None
            clip = DecodedClip(waveform, None)
        else:
            clip = _read_mp4(path, options, limits)
    except DecodeError:
        raise
    except (av.FFmpegError, soundfile.LibsndfileError, OSError, ValueError, RuntimeError) as exc:
        raise DecodeError(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if clip.waveform is not None:
        clip.waveform = centre_fit(clip.waveform, round(options.clip_seconds * options.sample_rate), pad=False)
    return clip


def decode_file(path: Path | str, spec: MediaSpec, *, max_seconds: float | None = None) -> dict[str, Any]:
    """A file as the model's evaluation data saw it: ``predict``'s keyword arguments.

    ``waveform``: the centre ``spec.clip_samples`` of the decoded audio, zero-padded (float32);
    ``frames``: uint8 (T, 3, size, size) face crops (``predict`` scales them by 1/255, as training
    did); ``sample_rate``. A stream the file lacks is left out. A missing or undecodable file, or one
    with no stream the model reads, raises :class:`~lexiedge_runtime.errors.InputValueError` naming it;
    a file longer than ``max_seconds`` (the manifest's ``preprocessing.max_input_seconds``; default
    10x the decoded window) or over the other :class:`DecodeLimits`, its subclass
    :class:`~lexiedge_runtime.errors.InputTooLargeError`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputValueError(f"{path}: no such file" if not path.is_dir() else f"{path} is a directory, not a file")
    _check_detector(spec)
    limits = DecodeLimits(max_seconds) if max_seconds is not None else DecodeLimits.for_options(spec.options)
    try:
        clip = decode_clip(path, spec.options, limits)
    except DecodeLimitError as exc:
        why = " (the bound is the model's preprocessing.max_input_seconds)"
        raise InputTooLargeError(f"{path}: {exc}{why if exc.bound in ('seconds', 'frames') else ''}") from None
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


def read_wav(path: Path, sample_rate: int, limits: DecodeLimits | None = None) -> np.ndarray:
    """A wav file (anything libsndfile reads) as float32 mono at ``sample_rate``, within ``limits``."""
    limits = limits or DecodeLimits(MAX_DECODE_SECONDS)
    with soundfile.SoundFile(str(path)) as sound:
        rate, channels = sound.samplerate, sound.channels
        limits.check_audio_format(rate, channels)
        if 0 <= sound.frames < np.iinfo(np.int64).max:  # the largest value: "not said" (a FLAC without it)
            limits.check_duration(sound.frames / rate, "audio")
        most = math.floor((limits.max_seconds + CODEC_SLACK_S) * rate)
        blocks: list[np.ndarray] = []
        read = 0
        while True:
            block = sound.read(WAV_BLOCK_FRAMES, dtype="float32", always_2d=True)  # (n, channels)
            if block.shape[0] == 0:
                break
            read += block.shape[0]
            if read > most:
                limits.check_decoded(read / rate, "audio")
            blocks.append(downmix(block.T))
    if not blocks:
        raise DecodeError("the wav file holds no samples")
    return _at_rate(np.concatenate(blocks), rate, sample_rate)


def downmix(planar: np.ndarray) -> np.ndarray:
    """(channels, N) float audio -> float32 (N,) mono: the channel mean, which keeps a centred voice at its
    level (a stereo recording of one speaker has it in both). Sample by sample, so blocks mix alike."""
    return np.ascontiguousarray(planar.mean(axis=0, dtype=np.float32))


def to_mono_rate(planar: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """(channels, N) float audio at ``rate`` -> float32 (M,) mono at ``sample_rate``, clipped to [-1, 1]."""
    return _at_rate(downmix(planar), rate, sample_rate)


def _at_rate(mono: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    if rate != sample_rate:
        mono = resample_swr(mono, rate, sample_rate)
    return np.clip(mono, -1.0, 1.0)


def resample_swr(mono: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Band-limited resampling with FFmpeg's swresample (through PyAV); output length round(N * ratio)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    frame = av.AudioFrame.from_ndarray(mono[np.newaxis, :], format="flt", layout="mono")
    frame.sample_rate = rate
    chunks = [out.to_ndarray()[0] for out in resampler.resample(frame)]
    chunks += [out.to_ndarray()[0] for out in resampler.resample(None)]  # flush the filter's tail
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


# --- mp4 ---------------------------------------------------------------------------------------


def _open(path: Path, limits: DecodeLimits) -> av.container.InputContainer:
    """The container, with FFmpeg's own per-frame pixel bound on every decoder: opening a file decodes its
    first frames to probe them, and an 8192x8192 frame cost 160 MB before anything here could look."""
    return av.open(str(path), options={"max_pixels": str(limits.max_frame_width * limits.max_frame_height)})


def _count_video_frames(path: Path, limits: DecodeLimits) -> int:
    """Frames in the first video stream, counted from packets (not decoded) when the container does not say."""
    with _open(path, limits) as container:
        stream = container.streams.video[0]
        if stream.frames:
            limits.check_frame_count(int(stream.frames))
            return int(stream.frames)
        counted = 0
        for packet in container.demux(stream):
            counted += 1 if packet.size else 0
            limits.check_frame_count(counted, counting=True)
        return counted


def _check_header(container: av.container.InputContainer, video: av.VideoStream | None,
                  audio: av.AudioStream | None, limits: DecodeLimits) -> None:
    """What the container says about the streams to be decoded, against the bounds: before any decoding."""
    for stream, name in ((video, "video"), (audio, "audio")):
        if stream is None:
            continue
        if stream.duration is not None and stream.time_base is not None:
            limits.check_duration(float(stream.duration * stream.time_base), name)
        elif container.duration is not None:  # the stream does not say: the whole file's length
            limits.check_duration(container.duration / av.time_base, name)
    if video is not None:
        limits.check_frame_size(video.codec_context.width, video.codec_context.height)
        if video.frames:
            limits.check_frame_count(int(video.frames))
    if audio is not None:
        limits.check_audio_format(audio.codec_context.sample_rate, audio.codec_context.channels)


def _read_mp4(path: Path, options: DecodeOptions, limits: DecodeLimits) -> DecodedClip:
    """The streams the options ask for, checked against the limits (header, then each frame), decoded once:
    the chosen video frames cropped, the audio mono at the model's rate."""
    with _open(path, limits) as container:
        video, audio = _chosen_streams(container, options)
        if video is None and audio is None:
            return DecodedClip(None, None)
        _check_header(container, video, audio, limits)
        wanted = _wanted_frames(path, video, options.frames, limits)
        decoded = _decode_streams(container, video, audio, wanted, limits)
    waveform = _waveform_of(decoded, options.sample_rate) if audio is not None else None
    frames, face_found = _frames_of(decoded, wanted, options) if video is not None else (None, None)
    return DecodedClip(waveform, frames, face_found)


def _chosen_streams(container: av.container.InputContainer,
                    options: DecodeOptions) -> tuple[av.VideoStream | None, av.AudioStream | None]:
    """The first video and audio stream, each when the options read it (a file with neither is refused)."""
    has_video, has_audio = bool(container.streams.video), bool(container.streams.audio)
    if not has_video and not has_audio:
        raise DecodeError("the file has neither a video nor an audio stream")
    video = container.streams.video[0] if options.video and has_video else None
    audio = container.streams.audio[0] if options.audio and has_audio else None
    return video, audio


def _wanted_frames(path: Path, video: av.VideoStream | None, count: int, limits: DecodeLimits) -> set[int]:
    """The indices of the ``count`` frames to keep, spread over the whole clip (none without video)."""
    if video is None:
        return set()
    video.thread_type = "AUTO"
    return set(uniform_indices(max(1, _count_video_frames(path, limits)), count))


@dataclass
class _Decoded:
    """What one pass over the packets kept: the wanted RGB frames, the last frame, the mono audio blocks."""

    kept: dict[int, np.ndarray] = field(default_factory=dict)
    last_frame: av.VideoFrame | None = None
    frame_count: int = 0
    mono_chunks: list[np.ndarray] = field(default_factory=list)
    audio_rate: int = 0
    audio_samples: int = 0


def _decode_streams(container: av.container.InputContainer, video: av.VideoStream | None,
                    audio: av.AudioStream | None, wanted: set[int], limits: DecodeLimits) -> _Decoded:
    decoded = _Decoded()
    # Normalise whatever sample format the codec gives (fltp for AAC, s16 for PCM) to planar float.
    to_planar = av.AudioResampler(format="fltp") if audio is not None else None
    for packet in container.demux(*[s for s in (video, audio) if s is not None]):
        for frame in packet.decode():
            if isinstance(frame, av.VideoFrame):
                _take_video_frame(decoded, frame, wanted, limits)
            elif isinstance(frame, av.AudioFrame) and to_planar is not None:
                _take_audio_frame(decoded, frame, to_planar, limits)
    if to_planar is not None:
        decoded.mono_chunks.extend(downmix(out.to_ndarray()) for out in to_planar.resample(None))
    return decoded


def _take_video_frame(decoded: _Decoded, frame: av.VideoFrame, wanted: set[int],
                      limits: DecodeLimits) -> None:
    _check_frame(frame, decoded.frame_count, limits)
    if decoded.frame_count in wanted:
        decoded.kept[decoded.frame_count] = frame.to_ndarray(format="rgb24")
    decoded.last_frame = frame
    decoded.frame_count += 1


def _take_audio_frame(decoded: _Decoded, frame: av.AudioFrame, to_planar: av.AudioResampler,
                      limits: DecodeLimits) -> None:
    decoded.audio_rate = frame.sample_rate
    limits.check_audio_format(decoded.audio_rate, frame.layout.nb_channels)
    decoded.audio_samples += frame.samples
    limits.check_decoded(decoded.audio_samples / decoded.audio_rate, "audio")
    decoded.mono_chunks.extend(downmix(out.to_ndarray()) for out in to_planar.resample(frame))


def _waveform_of(decoded: _Decoded, sample_rate: int) -> np.ndarray:
    if not decoded.mono_chunks:
        raise DecodeError("the audio stream decoded to no samples")
    return _at_rate(np.concatenate(decoded.mono_chunks), decoded.audio_rate, sample_rate)


def _frames_of(decoded: _Decoded, wanted: set[int], options: DecodeOptions) -> tuple[np.ndarray, bool]:
    if decoded.last_frame is None:
        raise DecodeError("the video stream decoded to no frames")
    # A container that over-reports its frame count leaves the last picks unfilled: reuse the last frame.
    tail = decoded.last_frame.to_ndarray(format="rgb24")
    picked = [decoded.kept.get(index, tail) for index in sorted(wanted)]
    return _crop_frames(picked, options.frames, options.image_size, options.face_crop)


def _check_frame(frame: av.VideoFrame, index: int, limits: DecodeLimits) -> None:
    """Each decoded frame against the bounds, before it is converted: the header may have said otherwise."""
    limits.check_frame_size(frame.width, frame.height)
    limits.check_frame_count(index + 1, counting=True)
    if frame.time is not None:
        limits.check_decoded(frame.time, "video")


def _crop_frames(picked: list[np.ndarray], count: int, size: int, face_crop: bool) -> tuple[np.ndarray, bool]:
    """uint8 (count, 3, size, size): one box for the whole clip so the face does not jump between frames."""
    if len(picked) < count:  # fewer frames in the clip than asked: repeat the nearest ones in time
        picked = [picked[int(i * len(picked) / count)] for i in range(count)]
    face = detect_face(picked) if face_crop else None
    height, width = picked[0].shape[:2]
    box = crop_box(height, width, face)
    crops = np.stack([crop_and_resize(frame, box, size) for frame in picked])
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2)), face is not None
