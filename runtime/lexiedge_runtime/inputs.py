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

The same facts go into the manifest as data (``preprocessing.feeds``, :meth:`ClassifierSpec.feeds`),
so that a runtime in another language (``runtime-js/``) checks and prepares inputs alike.

Every problem is a :class:`~lexiedge_runtime.errors.RuntimeInputError` naming the argument, what
was given and what was expected.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from lexiedge_runtime.errors import ArtifactError, InputDtypeError, InputShapeError, InputValueError
from lexiedge_runtime.io_names import AUDIO_MASK, FRAMES, LOGITS, PROBABILITIES, VIDEO_MASK, WAVEFORM
from lexiedge_runtime.manifest import ManifestError

# Out-of-range tolerance: float rounding in an app's own scaling must not be refused.
RANGE_SLACK = 1e-3
MIN_AUDIO_SECONDS = 0.1  # shorter clips carry no emotion and do not fill the STFT windows
MAX_INPUT_FACTOR = 10  # inputs up to this many training clips long are accepted (see input_limits)
# Sanity bounds on manifest values: wider than any real model, narrow enough to refuse nonsense.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384_000
MAX_FRAMES, MAX_IMAGE_SIZE, MAX_SECONDS = 10_000, 4096, 3600.0
FEEDS_VERSION = 1  # of the manifest's preprocessing.feeds (ClassifierSpec.feeds)


@dataclass(frozen=True)
class ClassifierSpec:
    """What the artifact's manifest says the classifier reads."""

    labels: tuple[str, ...]
    sample_rate: int
    clip_samples: int  # the training clip length: the length of a missing waveform's zeros
    frame_count: int  # frames per training clip: the count of a missing video's zeros
    image_size: int
    uses_audio: bool
    uses_video: bool
    channels: int = 3
    max_input_seconds: float = math.inf  # longer audio is refused: windowing long recordings is the app's job
    max_frames: int = sys.maxsize

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], where: str) -> ClassifierSpec:
        """The spec, or an :class:`ArtifactError` naming the first missing or out-of-range value."""
        preprocessing = manifest.get("preprocessing") or {}
        data = preprocessing.get("data_settings") or {}
        labels = manifest.get("labels") or []
        missing = [key for key in ("sample_rate", "clip_seconds", "frames", "image_size") if key not in data]
        if missing or not labels:
            what = ", ".join([f"preprocessing.data_settings.{key}" for key in missing] + ([] if labels else ["labels"]))
            raise ArtifactError(f"{where}: the manifest lacks {what}; re-export the run with this lexiedge version")
        rate = _whole(data, "sample_rate", where, low=MIN_SAMPLE_RATE, high=MAX_SAMPLE_RATE)
        clip_seconds = _seconds(data, "clip_seconds", where, "preprocessing.data_settings")
        frames = _whole(data, "frames", where, low=1, high=MAX_FRAMES)
        image_size = _whole(data, "image_size", where, low=1, high=MAX_IMAGE_SIZE)
        modalities = data.get("modalities") or ["audio", "video"]
        if not isinstance(modalities, list) or not modalities or not set(modalities) <= {"audio", "video"}:
            raise ManifestError(where, "preprocessing.data_settings.modalities",
                                f"expected a non-empty list of \"audio\" and \"video\", got {modalities!r}")
        limits = input_limits(clip_seconds, frames)
        if "max_input_seconds" in preprocessing:
            limits["max_input_seconds"] = _seconds(preprocessing, "max_input_seconds", where, "preprocessing")
        if "max_frames" in preprocessing:
            limits["max_frames"] = _whole(preprocessing, "max_frames", where, low=1, high=MAX_FRAMES,
                                          prefix="preprocessing")
        spec = cls(
            labels=tuple(str(label) for label in labels),
            sample_rate=rate,
            clip_samples=round(clip_seconds * rate),
            frame_count=frames,
            image_size=image_size,
            uses_audio="audio" in modalities,
            uses_video="video" in modalities,
            max_input_seconds=float(limits["max_input_seconds"]),
            max_frames=int(limits["max_frames"]),
        )
        if preprocessing.get("feeds") is not None:  # exported before it existed: absent, and that is fine
            spec.check_feeds(preprocessing["feeds"], where)
        return spec

    def feeds(self) -> dict[str, Any]:
        """The manifest's ``preprocessing.feeds``: every fact a runtime in another language needs, as data.

        The graph's input and output names by role, the audio rate, clip length and limits, the frame
        layout, size and uint8 scaling, and the value ranges with their tolerance: what this module
        checks and prepares, written by the exporter so that the JavaScript runtime (``runtime-js/``)
        reads it from the artifact instead of restating it. Checked by :meth:`check_feeds` at load.
        """
        modalities = [m for m, used in (("audio", self.uses_audio), ("video", self.uses_video)) if used]
        return {
            "version": FEEDS_VERSION,
            "modalities": modalities,
            "waveform": {"input": WAVEFORM, "dtype": "float32", "layout": ["batch", "samples"],
                         "sample_rate": self.sample_rate, "clip_samples": self.clip_samples, "range": [-1.0, 1.0],
                         "min_seconds": MIN_AUDIO_SECONDS, "max_seconds": self.max_input_seconds},
            "frames": {"input": FRAMES, "dtype": "float32", "layout": ["batch", "frames", "channels", "height", "width"],
                       "channels": self.channels, "image_size": self.image_size, "frame_count": self.frame_count,
                       "max_frames": self.max_frames, "range": [0.0, 1.0], "uint8_scale": float(np.float32(1 / 255))},
            "audio_mask": {"input": AUDIO_MASK, "present": 1.0, "absent": 0.0},
            "video_mask": {"input": VIDEO_MASK, "present": 1.0, "absent": 0.0},
            "outputs": {"probabilities": PROBABILITIES, "logits": LOGITS},
            "range_slack": RANGE_SLACK,
            "max_input_factor": MAX_INPUT_FACTOR,
        }

    def check_feeds(self, recorded: Any, where: str) -> None:
        """Refuse a ``preprocessing.feeds`` that disagrees with the model facts this runtime derives itself."""
        key = "preprocessing.feeds"
        if not isinstance(recorded, dict):
            raise ManifestError(where, key, f"expected a mapping, got {type(recorded).__name__}")
        if recorded.get("version") != FEEDS_VERSION:
            raise ManifestError(where, f"{key}.version", f"expected {FEEDS_VERSION}, got {recorded.get('version')!r}")
        expected = self.feeds()
        for section, field_name in (("waveform", "input"), ("waveform", "sample_rate"), ("waveform", "clip_samples"),
                                    ("waveform", "max_seconds"), ("frames", "input"), ("frames", "channels"),
                                    ("frames", "image_size"), ("frames", "frame_count"), ("frames", "max_frames"),
                                    ("audio_mask", "input"), ("video_mask", "input"), ("outputs", "probabilities")):
            part = recorded.get(section)
            value = part.get(field_name) if isinstance(part, dict) else None
            if value != expected[section][field_name]:
                raise ManifestError(where, f"{key}.{section}.{field_name}",
                                    f"{value!r} disagrees with what the rest of the manifest says "
                                    f"({expected[section][field_name]!r})")
        if recorded.get("modalities") != expected["modalities"]:
            raise ManifestError(where, f"{key}.modalities", f"{recorded.get('modalities')!r} disagrees with "
                                f"preprocessing.data_settings.modalities ({expected['modalities']!r})")


def input_limits(clip_seconds: float, frames: int) -> dict[str, float | int]:
    """The longest input a classifier artifact accepts: ``MAX_INPUT_FACTOR`` training clips.

    The exporter writes these into the manifest's ``preprocessing``; an artifact exported before they
    existed gets the same limits from its clip length. Attention cost grows with the square of the
    length (10 minutes of audio took 4 GB and 17 s), so an app splits long recordings into windows.
    """
    return {"max_input_seconds": round(clip_seconds * MAX_INPUT_FACTOR, 3), "max_frames": frames * MAX_INPUT_FACTOR}


def _whole(values: dict[str, Any], key: str, where: str, *, low: int, high: int,
           prefix: str = "preprocessing.data_settings") -> int:
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ManifestError(where, f"{prefix}.{key}", f"expected a whole number from {low} to {high}, got {value!r}")
    return value


def _seconds(values: dict[str, Any], key: str, where: str, prefix: str) -> float:
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value <= MAX_SECONDS:
        raise ManifestError(where, f"{prefix}.{key}", f"expected seconds in (0, {MAX_SECONDS:g}], got {value!r}")
    return float(value)


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
        array = resample(array, int(sample_rate), spec.sample_rate)
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


def resample(waveforms: np.ndarray, rate: int, target: int) -> np.ndarray:
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
