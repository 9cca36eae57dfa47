"""Checking and preparing a classifier's inputs: app arrays -> the graph's four feeds.

What the graph reads (the artifact's ``preprocessing`` section): ``waveform`` float32 (B, S) mono in
[-1, 1] at the model's sample rate, ``frames`` float32 (B, T, 3, H, W) RGB in [0, 1] with H = W =
``image_size``, and ``audio_mask``/``video_mask`` (B,), 1.0 where the modality is present. A missing
modality is zeros of the training shape with mask 0, exactly as the training batches had it.

Decisions (documented in :mod:`lexiedge_runtime`):

* audio at another rate is resampled here (band-limited FFT resampling, numpy only); int PCM is
  refused, since guessing its scale would silently change what the model hears;
* uint8 frames are scaled by 1/255 (that is what the training data loader does); other integer
  frames are refused;
* float64/float16 arrays are converted to float32; NaN/inf and out-of-range values are refused;
* a modality the model was not trained on (``data_settings.modalities``) is dropped, as in training.

What the graph reads is the task's manifest section, :class:`ClassifierSpec`
(:mod:`lexiedge_runtime.tasks.av_classification`, re-exported here); the same facts go into the
manifest as data (``preprocessing.feeds``, :meth:`ClassifierSpec.feeds`), so that a runtime in
another language (``runtime-js/``) checks and prepares inputs alike.

Every problem is a :class:`~lexiedge_runtime.errors.RuntimeInputError` naming the argument, what
was given and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lexiedge_runtime.errors import InputDtypeError, InputShapeError, InputValueError
from lexiedge_runtime.io_names import AUDIO_MASK, FRAMES, VIDEO_MASK, WAVEFORM
from lexiedge_runtime.tasks.av_classification import (  # the task's manifest section: read once, there
    FEEDS_VERSION,
    MAX_INPUT_FACTOR,
    MIN_AUDIO_SECONDS,
    RANGE_SLACK,
    ClassifierSpec,
    input_limits,
)

__all__ = [
    "FEEDS_VERSION",
    "MAX_INPUT_FACTOR",
    "MIN_AUDIO_SECONDS",
    "RANGE_SLACK",
    "ClassifierSpec",
    "PreparedBatch",
    "input_limits",
    "prepare_inputs",
    "resample_fft",
    "scale_frames",
]


@dataclass
class PreparedBatch:
    """The graph's feeds, the batch size and whether the caller passed one clip (not a batch)."""

    feeds: dict[str, np.ndarray]
    batch_size: int
    single: bool


def prepare_inputs(
    spec: ClassifierSpec, waveform: Any = None, frames: Any = None, *, sample_rate: int = 16000
) -> PreparedBatch:
    """Check the app's arrays and build the four feeds (missing modalities: zeros with mask 0)."""
    audio = _waveform(spec, waveform, sample_rate) if waveform is not None and spec.uses_audio else None
    video = _frames(spec, frames) if frames is not None and spec.uses_video else None
    if audio is None and video is None:
        raise InputValueError(_nothing_to_classify(spec, waveform, frames))
    single, batch = _batch_layout(audio, video)
    if audio is None:
        audio = _AudioIn(np.zeros((batch, spec.clip_samples), np.float32), single)
    if video is None:
        size = spec.image_size
        video = _VideoIn(np.zeros((batch, spec.frame_count, spec.channels, size, size), np.float32), single)
    feeds = {
        WAVEFORM: np.ascontiguousarray(audio.array),
        FRAMES: np.ascontiguousarray(video.array),
        AUDIO_MASK: np.full(batch, 1.0 if waveform is not None and spec.uses_audio else 0.0, np.float32),
        VIDEO_MASK: np.full(batch, 1.0 if frames is not None and spec.uses_video else 0.0, np.float32),
    }
    return PreparedBatch(feeds, batch, single)


# --- one modality each ----------------------------------------------------------------------------


@dataclass
class _AudioIn:
    array: np.ndarray  # (B, S) float32
    single: bool


@dataclass
class _VideoIn:
    array: np.ndarray  # (B, T, 3, H, W) float32
    single: bool


def _waveform(spec: ClassifierSpec, waveform: Any, sample_rate: Any) -> _AudioIn:
    array = _as_array("waveform", waveform)
    if array.dtype.kind != "f":
        hint = " (scale int16 PCM by 1/32768)" if array.dtype.kind in "iu" else ""
        raise InputDtypeError(
            f"waveform has dtype {array.dtype}; expected float32 mono samples in [-1, 1]{hint}"
        )
    if array.ndim not in (1, 2):
        raise InputShapeError(
            f"waveform has shape {array.shape}; expected (samples,) for one clip or (batch, samples) for a batch "
            "of mono clips"
        )
    single = array.ndim == 1
    array = array[np.newaxis] if single else array
    if array.shape[0] == 0:
        raise InputValueError("waveform is an empty batch (batch size 0); pass at least one clip")
    if array.shape[1] == 0:
        raise InputValueError("waveform is empty (0 samples); pass at least one clip of mono audio")
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise InputValueError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    shortest = round(MIN_AUDIO_SECONDS * sample_rate)
    if array.shape[1] < shortest:
        stereo = " (a (samples, channels) stereo array? downmix it to mono first)" if not single else ""
        raise InputShapeError(
            f"waveform clips have {array.shape[1]} samples; expected at least {shortest} "
            f"({MIN_AUDIO_SECONDS} s at {sample_rate} Hz){stereo}"
        )
    seconds = array.shape[1] / sample_rate
    if seconds > spec.max_input_seconds:  # before any copy: the check must not cost what it prevents
        raise InputShapeError(
            f"waveform clips are {seconds:.1f} s long; this model takes at most {spec.max_input_seconds:g} s "
            f"(preprocessing.max_input_seconds, {MAX_INPUT_FACTOR}x its training clips): split long audio "
            "into windows and classify each"
        )
    array = array.astype(np.float32, copy=False)
    _check_finite("waveform", array)
    peak = float(np.abs(array).max())
    if peak > 1.0 + RANGE_SLACK:
        raise InputValueError(
            f"waveform values must lie in [-1, 1] (float PCM); got max |x| = {peak:.4g} "
            "(scale int16 PCM by 1/32768)"
        )
    if sample_rate != spec.sample_rate:
        array = resample_fft(array, int(sample_rate), spec.sample_rate)
    return _AudioIn(array, single)


def _frames(spec: ClassifierSpec, frames: Any) -> _VideoIn:
    array = _as_array("frames", frames)
    size, channels = spec.image_size, spec.channels
    expected = f"(frames, {channels}, {size}, {size}) for one clip or (batch, frames, {channels}, {size}, {size})"
    if array.dtype == np.uint8:
        scaled = True
    elif array.dtype.kind == "f":
        scaled = False
    else:
        raise InputDtypeError(f"frames have dtype {array.dtype}; expected float32 RGB in [0, 1] or uint8 RGB")
    if array.ndim not in (4, 5):
        raise InputShapeError(f"frames have shape {array.shape}; expected {expected}")
    single = array.ndim == 4
    array = array[np.newaxis] if single else array
    batch, count, got_channels, height, width = array.shape
    if batch == 0:
        raise InputValueError("frames are an empty batch (batch size 0); pass at least one clip")
    if count == 0:
        raise InputValueError(f"frames hold 0 frames; expected {expected} with at least one frame")
    if count > spec.max_frames:
        raise InputShapeError(
            f"frames hold {count} frames; this model takes at most {spec.max_frames} "
            f"(preprocessing.max_frames, {MAX_INPUT_FACTOR}x its training clips): split long video into windows"
        )
    if got_channels != channels:
        hint = " (channels-last? transpose (T, H, W, 3) to (T, 3, H, W))" if width == channels else ""
        raise InputShapeError(
            f"frames have {got_channels} channels in shape {array.shape[1:]}; expected {expected}{hint}"
        )
    if (height, width) != (size, size):
        raise InputShapeError(
            f"frames are {height}x{width}; this model reads {size}x{size} face crops "
            f"(preprocessing.data_settings.image_size); expected {expected}"
        )
    if scaled:
        return _VideoIn(scale_frames(array), single)
    array = array.astype(np.float32, copy=False)
    _check_finite("frames", array)
    low, high = float(array.min()), float(array.max())
    if low < -RANGE_SLACK or high > 1.0 + RANGE_SLACK:
        hint = " (0-255 pixel values? divide by 255 or pass uint8)" if high > 1.0 + RANGE_SLACK else ""
        raise InputValueError(f"float frames must lie in [0, 1]; got values in [{low:.4g}, {high:.4g}]{hint}")
    return _VideoIn(array, single)


def scale_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB frames -> float32 in [0, 1]: the normalisation the model was trained with.

    The one place it happens: the training data loader calls this too. Multiplying by the float32
    reciprocal (not dividing) is what training did, so the values match bit for bit; numpy, not torch,
    so a loader in the training process does not wake torch's thread pool.
    """
    return np.multiply(frames, np.float32(1.0 / 255.0), dtype=np.float32)


# --- helpers ----------------------------------------------------------------------------------------


def _as_array(name: str, value: Any) -> np.ndarray:
    """numpy arrays pass through; lists are converted; anything else is an InputDtypeError."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as exc:  # ragged lists and the like
            raise InputDtypeError(
                f"{name} is not an array ({type(value).__name__}: {exc}); pass a numpy array"
            ) from None
    if array.dtype.kind not in "fiub":
        raise InputDtypeError(f"{name} has dtype {array.dtype} ({type(value).__name__}); pass a numeric numpy array")
    return array


def _check_finite(name: str, array: np.ndarray) -> None:
    finite = np.isfinite(array).reshape(array.shape[0], -1).all(axis=1)
    if not finite.all():
        bad = [int(i) for i in np.flatnonzero(~finite)]
        where = "the clip" if array.shape[0] == 1 else f"clip(s) {bad[:5]}"
        raise InputValueError(f"{name} contains NaN or infinite values in {where}; expected finite numbers")


def _batch_layout(audio: _AudioIn | None, video: _VideoIn | None) -> tuple[bool, int]:
    """(single clip?, batch size), refusing a waveform and frames that do not describe the same clips."""
    present = [m for m in (audio, video) if m is not None]
    if len(present) == 2:
        assert audio is not None and video is not None
        if audio.single != video.single:
            raise InputShapeError(
                f"waveform is {_layout(audio.single)} but frames are {_layout(video.single)}; pass (samples,) with "
                "(T, 3, H, W) for one clip, or (batch, samples) with (batch, T, 3, H, W) for a batch"
            )
        if audio.array.shape[0] != video.array.shape[0]:
            raise InputShapeError(
                f"waveform holds {audio.array.shape[0]} clips but frames hold {video.array.shape[0]}; "
                "the batch sizes must match"
            )
    return present[0].single, present[0].array.shape[0]


def _layout(single: bool) -> str:
    return "one clip" if single else "a batch"


def _nothing_to_classify(spec: ClassifierSpec, waveform: Any, frames: Any) -> str:
    if waveform is None and frames is None:
        return "nothing to classify: pass waveform=, frames= or both"
    unused = "audio" if waveform is not None else "video"
    return (f"this model was trained without {unused} (preprocessing.data_settings.modalities); "
            f"pass {'frames=' if unused == 'audio' else 'waveform='}")


def resample_fft(waveforms: np.ndarray, rate: int, target: int) -> np.ndarray:
    """(B, N) float32 at ``rate`` -> (B, round(N * target / rate)) at ``target``, band-limited.

    FFT resampling: the spectrum is cut (downsampling: an ideal low-pass at the new Nyquist, so
    nothing aliases) or zero-extended (upsampling), then transformed back. numpy only, exact for
    the frequencies both rates can hold; it treats each clip as periodic, which only touches the
    first and last few milliseconds.
    """
    length = waveforms.shape[-1]
    new_length = max(1, round(length * target / rate))
    spectrum = np.fft.rfft(waveforms.astype(np.float64), axis=-1)
    bins = new_length // 2 + 1
    if bins <= spectrum.shape[-1]:
        spectrum = spectrum[..., :bins]
    else:
        spectrum = np.pad(spectrum, [(0, 0)] * (spectrum.ndim - 1) + [(0, bins - spectrum.shape[-1])])
    out = np.fft.irfft(spectrum, n=new_length, axis=-1) * (new_length / length)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


# --- fitting to the training clip (decoding, and the fixed-length LiteRT runner) --------------------


def centre_fit(waveform: np.ndarray, length: int, *, pad: bool = True) -> np.ndarray:
    """The centre ``length`` samples; shorter clips are zero-padded at the end when ``pad``."""
    if waveform.shape[0] > length:
        start = (waveform.shape[0] - length) // 2
        return waveform[start : start + length]
    if pad and waveform.shape[0] < length:
        return np.pad(waveform, (0, length - waveform.shape[0]))
    return waveform


def uniform_indices(total: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over ``total`` frames (the centre of each of count segments)."""
    return [min(total - 1, int((i + 0.5) * total / count)) for i in range(count)]
