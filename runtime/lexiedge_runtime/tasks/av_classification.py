"""The ``av-classification`` task: an audio-visual clip in, a probability per label out.

Declared once here, read by every stage (optimum's ``OnnxConfig`` is the model):

* the graph's signature: :data:`INPUTS` and :data:`OUTPUTS` (names, dtypes, dynamic axes), in the
  order of the model's ``forward``: ``waveform`` float32 (batch, samples) mono in [-1, 1],
  ``frames`` float32 (batch, frames, 3, H, W) RGB in [0, 1], ``audio_mask``/``video_mask`` float32
  (batch,), 1.0 where the modality is present; out ``logits`` (batch, classes), what the model
  returns, and ``probabilities``, their softmax, appended at export;
* the clip settings a dataset serving this task declares (:data:`CLIP_SETTINGS`, :class:`ClipShape`):
  what the model plugin builds example batches from and the exporter records;
* the manifest section: ``labels`` and ``preprocessing`` (:class:`ClassifierSpec` reads it and writes
  ``preprocessing.feeds``; :func:`preprocessing_section` writes the rest), checked by
  :func:`check_manifest` when an artifact loads; its JSON Schema is :mod:`lexiedge_runtime.tasks.schema`'s;
* enrollment, for a model that normalises its features by speaker: the graph's extra output and
  optional inputs (:data:`FEATURE_STATS`, :data:`SPEAKER_MEAN`, :data:`SPEAKER_STD`), the manifest's
  ``enrollment`` section that states them (:class:`EnrollmentSection`, written by
  :func:`enrollment_section`) and the one rule turning a speaker's clips' statistics into their profile
  (:func:`speaker_profile`), which training and every runtime apply
  (:mod:`lexiedge_runtime.enrollment` enrolls speakers with it);
* example inputs (:func:`example_feeds`): the seeded random clips the bench times and the export's
  shape sweep runs;
* the default verification thresholds (:data:`THRESHOLDS`, by the precision of the exported graph);
* the task metric (:data:`METRIC`, UAR) and the runners (:data:`RUNNERS`, keyed by engine).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lexiedge_runtime.errors import ArtifactError, ManifestError
from lexiedge_runtime.media.spec import MediaSection, MediaSpec
from lexiedge_runtime.tasks.sections import Section, meta, required
from lexiedge_runtime.tasks.spec import RunnerEntry, TaskMetric, TaskSpec, TensorSpec, ort_label

NAME = "av-classification"

# the graph's inputs, in the order of the model's forward, and its outputs
WAVEFORM, FRAMES, AUDIO_MASK, VIDEO_MASK = "waveform", "frames", "audio_mask", "video_mask"
LOGITS, PROBABILITIES = "logits", "probabilities"
CHANNELS = 3  # RGB
LABEL = "label"  # the batch entry holding the class index (int64) in training batches

INPUTS: tuple[TensorSpec, ...] = (
    TensorSpec(WAVEFORM, "float32", ("batch", "samples")),
    TensorSpec(FRAMES, "float32", ("batch", "frames", CHANNELS, None, None)),  # None: the model's image_size
    TensorSpec(AUDIO_MASK, "float32", ("batch",)),
    TensorSpec(VIDEO_MASK, "float32", ("batch",)),
)
OUTPUTS: tuple[TensorSpec, ...] = (
    TensorSpec(LOGITS, "float32", ("batch", None)),  # None: the number of labels
    TensorSpec(PROBABILITIES, "float32", ("batch", None)),
)
INPUT_NAMES: tuple[str, ...] = tuple(tensor.name for tensor in INPUTS)
MODEL_OUTPUT_NAMES: tuple[str, ...] = (LOGITS,)  # what torch.onnx.export names; the softmax is appended after
SIGNAL_INPUTS = (WAVEFORM, FRAMES)  # the inputs that carry the clip (mixup blends these)
MASK_INPUTS = (AUDIO_MASK, VIDEO_MASK)  # 1.0 present / 0.0 missing, one per modality
MODALITIES = ("audio", "video")

# Out-of-range tolerance: float rounding in an app's own scaling must not be refused.
RANGE_SLACK = 1e-3
MIN_AUDIO_SECONDS = 0.1  # shorter clips carry no emotion and do not fill the STFT windows
MAX_INPUT_FACTOR = 10  # inputs up to this many training clips long are accepted (see input_limits)
# Sanity bounds on manifest values: wider than any real model, narrow enough to refuse nonsense.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384_000
MAX_FRAMES, MAX_IMAGE_SIZE, MAX_SECONDS = 10_000, 4096, 3600.0
FEEDS_VERSION = 1  # of the manifest's preprocessing.feeds (ClassifierSpec.feeds)
ENROLLMENT_VERSION = 1  # of the manifest's enrollment section (EnrollmentSection)
Modality = Literal["audio", "video"]


# --- the typed manifest section ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClipShape(Section):
    """The clip contract: what a dataset serving this task declares in its settings, by these names.

    The model plugin builds its example batch from it, the exporter records the dataset's settings
    (``preprocessing.data_settings``, which hold these and more), and the runtime reads them back
    (:class:`ClassifierSpec`). ``modalities`` None: both.
    """

    sample_rate: int = required(minimum=MIN_SAMPLE_RATE, maximum=MAX_SAMPLE_RATE)
    clip_seconds: float = required(exclusiveMinimum=0, maximum=MAX_SECONDS)
    frames: int = required(minimum=1, maximum=MAX_FRAMES)
    image_size: int = required(minimum=1, maximum=MAX_IMAGE_SIZE)
    modalities: list[Modality] | None = meta(minItems=1)

    @property
    def clip_samples(self) -> int:
        return round(self.clip_seconds * self.sample_rate)

    @classmethod
    def of(cls, settings: Any, where: str = "the data settings") -> ClipShape:
        """The clip a dataset's settings declare (:meth:`from_settings`); :data:`DEFAULT_CLIP` when they
        declare none of :data:`CLIP_SETTINGS` (no dataset, or one of another task)."""
        declared = (
            settings.keys()
            if isinstance(settings, dict)
            else [k for k in CLIP_SETTINGS if hasattr(settings, k)]
        )
        return cls.from_settings(settings, where) if set(declared) & set(CLIP_SETTINGS) else DEFAULT_CLIP

    @classmethod
    def from_settings(cls, settings: Any, where: str = "the data settings") -> ClipShape:
        """The clip shape a dataset's settings declare (attributes or a mapping), or an ArtifactError naming
        the first of :data:`CLIP_SETTINGS` they lack."""
        values = (
            settings
            if isinstance(settings, dict)
            else {
                key: getattr(settings, key)
                for key in (*CLIP_SETTINGS, "modalities")
                if hasattr(settings, key)
            }
        )
        missing = [key for key in CLIP_SETTINGS if key not in values]
        if missing:
            raise ArtifactError(
                f"{where} lack {', '.join(missing)}: a dataset serving {NAME} declares "
                f"{', '.join(CLIP_SETTINGS)} (lexiedge_runtime.tasks.av_classification.ClipShape)"
            )
        modalities = values.get("modalities")
        return cls(
            sample_rate=int(values["sample_rate"]),
            clip_seconds=float(values["clip_seconds"]),
            frames=int(values["frames"]),
            image_size=int(values["image_size"]),
            modalities=list(modalities) if modalities else None,
        )


CLIP_SETTINGS = ("sample_rate", "clip_seconds", "frames", "image_size")  # + optional "modalities"
# the clip of a model used without a dataset's settings (`lexiedge plan` of a bare model, tests): the
# emotion-av defaults, 3 s of 16 kHz audio and 8 face crops of 64x64
DEFAULT_CLIP = ClipShape(sample_rate=16000, clip_seconds=3.0, frames=8, image_size=64)


@dataclass(frozen=True, kw_only=True)
class WaveformFeed(Section):
    """How the audio input is fed: its graph input, rate, the training clip's length, range and limits."""

    input: str = required(pattern=".")
    dtype: str = required()
    layout: list[str] = required()
    sample_rate: int = required(minimum=MIN_SAMPLE_RATE, maximum=MAX_SAMPLE_RATE)
    clip_samples: int = required(minimum=1, maximum=MAX_SAMPLE_RATE * 3600)
    range: list[float] = required(minItems=2, maxItems=2)
    min_seconds: float = required(exclusiveMinimum=0)
    max_seconds: float = required(exclusiveMinimum=0)


@dataclass(frozen=True, kw_only=True)
class FramesFeed(Section):
    """How the video input is fed: its graph input, layout, size, frame counts, range and uint8 scaling."""

    input: str = required(pattern=".")
    dtype: str = required()
    layout: list[str] = required()
    channels: int = required(minimum=1, maximum=4)
    image_size: int = required(minimum=1, maximum=MAX_IMAGE_SIZE)
    frame_count: int = required(minimum=1, maximum=MAX_FRAMES)
    max_frames: int = required(minimum=1, maximum=MAX_FRAMES)
    range: list[float] = required(minItems=2, maxItems=2)
    uint8_scale: float = required(exclusiveMinimum=0)


@dataclass(frozen=True, kw_only=True)
class MaskFeed(Section):
    """A modality's mask input: the value that says present, and absent."""

    input: str = required(pattern=".")
    present: float = required()
    absent: float = required()


@dataclass(frozen=True, kw_only=True)
class FeedOutputs(Section):
    """The graph's outputs by role."""

    probabilities: str = required(pattern=".")
    logits: str | None = meta()


@dataclass(frozen=True, kw_only=True)
class Feeds(Section):
    """preprocessing.feeds: the input contract as data, what a runtime in another language reads."""

    VERSION = FEEDS_VERSION

    version: Literal[FEEDS_VERSION] = required()
    modalities: list[Modality] = required(minItems=1)
    waveform: WaveformFeed = required()
    frames: FramesFeed = required()
    audio_mask: MaskFeed = required()
    video_mask: MaskFeed = required()
    outputs: FeedOutputs = required()
    range_slack: float = required(minimum=0)
    max_input_factor: int = required(minimum=1, maximum=1_000_000)


@dataclass(frozen=True, kw_only=True)
class AvPreprocessing(Section):
    """preprocessing of a classifier: what an app must feed, as prose and as data, and how files decode."""

    waveform: str | None = meta(omit_none=True)
    frames: str | None = meta(omit_none=True)
    max_input_seconds: float | None = meta(exclusiveMinimum=0, maximum=MAX_SECONDS, omit_none=True)
    max_frames: int | None = meta(minimum=1, maximum=MAX_FRAMES, omit_none=True)
    masks: str | None = meta(omit_none=True)
    output: str | None = meta(omit_none=True)
    data_plugin: str | None = meta()
    data_settings: dict[str, Any] = required(holds=ClipShape)
    feeds: Feeds | None = meta(omit_none=True)
    media: MediaSection | None = meta(omit_none=True)


# --- enrollment: a model normalised by its speaker's statistics ----------------------------------------
# A speaker-normalised graph keeps the four inputs above and adds one output, FEATURE_STATS (batch, 2,
# features): per clip, each feature's mean and mean square over its frames; and two optional inputs,
# SPEAKER_MEAN and SPEAKER_STD (1 or batch, features): graph inputs with an initializer, the global
# training statistics, so feeding nothing is the fallback.
FEATURE_STATS, SPEAKER_MEAN, SPEAKER_STD = "feature_stats", "speaker_mean", "speaker_std"
MIN_ENROLLMENT_CLIPS = 2  # the fewest clips a profile is made of (training enrolls with at least this many)
PROFILE_VARIANCE_FLOOR = 1e-5  # a feature constant over the enrollment frames (silence) keeps a finite std
MAX_FEATURES = 100_000  # enrollment.features above this is a broken manifest, not a model


@dataclass(frozen=True, kw_only=True)
class ProfileInputs(Section):
    """The graph inputs a speaker profile is fed to: its per-feature mean and standard deviation."""

    mean: str = required(pattern=".")
    std: str = required(pattern=".")


@dataclass(frozen=True, kw_only=True)
class EnrollmentSection(Section):
    """enrollment: how an app turns a speaker's clips into the profile a speaker-normalised graph takes.

    Run the graph on each clip; the profile's mean is the average over the clips of
    ``statistics_output[:, 0]``, its std sqrt(max(the average of ``statistics_output[:, 1]`` - mean^2,
    ``variance_floor``)), fed as ``profile_inputs`` with every later clip of that speaker. At least
    ``min_clips`` clips; without a profile the graph uses the global training statistics.
    """

    VERSION = ENROLLMENT_VERSION

    version: Literal[ENROLLMENT_VERSION] = required()
    statistics_output: str = required(pattern=".")
    profile_inputs: ProfileInputs = required()
    features: int = required(minimum=1, maximum=MAX_FEATURES)
    variance_floor: float = required(exclusiveMinimum=0)
    min_clips: int = required(minimum=1, maximum=10_000)
    profile: str | None = meta(omit_none=True)  # the rule above in words, for people reading the manifest

    @classmethod
    def read(cls, manifest: dict[str, Any]) -> EnrollmentSection | None:
        """The section of a manifest the schema has checked (:func:`check_manifest`), or None without one."""
        value = manifest.get("enrollment")
        if value is None:
            return None
        inputs = value["profile_inputs"]
        return cls(
            version=value["version"],
            statistics_output=value["statistics_output"],
            profile_inputs=ProfileInputs(mean=inputs["mean"], std=inputs["std"]),
            features=value["features"],
            variance_floor=float(value["variance_floor"]),
            min_clips=value["min_clips"],
            profile=value.get("profile"),
        )


def enrollment_section(features: int) -> dict[str, Any]:
    """The manifest's ``enrollment`` of a speaker-normalised graph with the names and the rule above (what
    the exporter writes)."""
    return EnrollmentSection(
        version=ENROLLMENT_VERSION,
        statistics_output=FEATURE_STATS,
        profile_inputs=ProfileInputs(mean=SPEAKER_MEAN, std=SPEAKER_STD),
        features=features,
        variance_floor=PROFILE_VARIANCE_FLOOR,
        min_clips=MIN_ENROLLMENT_CLIPS,
        profile=(
            f"run the graph on each enrollment clip; mean = the average over the clips of "
            f"{FEATURE_STATS}[:, 0], std = sqrt(max(the average of {FEATURE_STATS}[:, 1] - mean^2, "
            f"variance_floor)); feed them as {SPEAKER_MEAN} and {SPEAKER_STD}, shape (1 or batch, "
            "features); without them the graph uses the global training statistics"
        ),
    ).to_json()


def speaker_profile(feature_stats: np.ndarray, variance_floor: float) -> tuple[np.ndarray, np.ndarray]:
    """A speaker's profile from the graph's ``feature_stats`` of their enrollment clips, (clips, 2,
    features): the mean of the clips' means, and the standard deviation from the mean of their mean
    squares, its variance floored at ``variance_floor``; each (features,) float32. Clips weigh the same;
    sums run in float64. The one rule: training computes its speakers' statistics with it, the runtime
    its profiles (runtime-js follows it line by line), so training sees what apps feed. These two
    vectors are the whole profile: nothing of the audio is kept."""
    stats = np.asarray(feature_stats, dtype=np.float64)
    if stats.ndim != 3 or stats.shape[1] != 2 or stats.shape[0] < 1:
        raise ValueError(f"feature_stats must be (clips, 2, features), got shape {stats.shape}")
    mean = stats[:, 0].mean(axis=0)
    variance = np.maximum(stats[:, 1].mean(axis=0) - mean * mean, variance_floor)
    return mean.astype(np.float32), np.sqrt(variance).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class AvSection(Section):
    """The av-classification part of manifest.json: the labels, what the model reads and, for a model
    normalised by its speaker, how to enroll one."""

    labels: list[str] = required(minItems=1)
    preprocessing: AvPreprocessing = required()
    enrollment: EnrollmentSection | None = meta(omit_none=True)


@dataclass(frozen=True)
class ClassifierSpec:
    """What the artifact's manifest says the classifier reads: the task's manifest section, read.

    Built from ``labels``, ``preprocessing.data_settings`` (the :data:`CLIP_SETTINGS`) and the input
    limits; :meth:`feeds` writes ``preprocessing.feeds``, the same facts as data for other runtimes.
    """

    labels: tuple[str, ...]
    sample_rate: int
    clip_samples: int  # the training clip length: the length of a missing waveform's zeros
    frame_count: int  # frames per training clip: the count of a missing video's zeros
    image_size: int
    uses_audio: bool
    uses_video: bool
    channels: int = CHANNELS
    max_input_seconds: float = math.inf  # longer audio is refused: windowing long recordings is the app's job
    max_frames: int = sys.maxsize

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], where: str) -> ClassifierSpec:
        """The spec, or an :class:`ArtifactError` naming the first missing or out-of-range value."""
        preprocessing = manifest.get("preprocessing") or {}
        data = preprocessing.get("data_settings") or {}
        labels = manifest.get("labels") or []
        missing = [key for key in CLIP_SETTINGS if key not in data]
        if missing or not labels:
            what = ", ".join(
                [f"preprocessing.data_settings.{key}" for key in missing] + ([] if labels else ["labels"])
            )
            raise ArtifactError(
                f"{where}: the manifest lacks {what}; re-export the run with this lexiedge version"
            )
        rate = _whole(data, "sample_rate", where, low=MIN_SAMPLE_RATE, high=MAX_SAMPLE_RATE)
        clip_seconds = _seconds(data, "clip_seconds", where, "preprocessing.data_settings")
        frames = _whole(data, "frames", where, low=1, high=MAX_FRAMES)
        image_size = _whole(data, "image_size", where, low=1, high=MAX_IMAGE_SIZE)
        modalities = data.get("modalities") or ["audio", "video"]
        if not isinstance(modalities, list) or not modalities or not set(modalities) <= set(MODALITIES):
            raise ManifestError(
                where,
                "preprocessing.data_settings.modalities",
                f'expected a non-empty list of "audio" and "video", got {modalities!r}',
            )
        limits = input_limits(clip_seconds, frames)
        if "max_input_seconds" in preprocessing:
            limits["max_input_seconds"] = _seconds(preprocessing, "max_input_seconds", where, "preprocessing")
        if "max_frames" in preprocessing:
            limits["max_frames"] = _whole(
                preprocessing, "max_frames", where, low=1, high=MAX_FRAMES, prefix="preprocessing"
            )
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
        return Feeds(
            version=FEEDS_VERSION,
            modalities=modalities,
            waveform=WaveformFeed(
                input=WAVEFORM,
                dtype="float32",
                layout=["batch", "samples"],
                sample_rate=self.sample_rate,
                clip_samples=self.clip_samples,
                range=[-1.0, 1.0],
                min_seconds=MIN_AUDIO_SECONDS,
                max_seconds=self.max_input_seconds,
            ),
            frames=FramesFeed(
                input=FRAMES,
                dtype="float32",
                layout=["batch", "frames", "channels", "height", "width"],
                channels=self.channels,
                image_size=self.image_size,
                frame_count=self.frame_count,
                max_frames=self.max_frames,
                range=[0.0, 1.0],
                uint8_scale=float(np.float32(1 / 255)),
            ),
            audio_mask=MaskFeed(input=AUDIO_MASK, present=1.0, absent=0.0),
            video_mask=MaskFeed(input=VIDEO_MASK, present=1.0, absent=0.0),
            outputs=FeedOutputs(probabilities=PROBABILITIES, logits=LOGITS),
            range_slack=RANGE_SLACK,
            max_input_factor=MAX_INPUT_FACTOR,
        ).to_json()

    def check_feeds(self, recorded: Any, where: str) -> None:
        """Refuse a ``preprocessing.feeds`` that disagrees with the facts this runtime derives itself."""
        key = "preprocessing.feeds"
        if not isinstance(recorded, dict):
            raise ManifestError(where, key, f"expected a mapping, got {type(recorded).__name__}")
        if recorded.get("version") != FEEDS_VERSION:
            raise ManifestError(
                where, f"{key}.version", f"expected {FEEDS_VERSION}, got {recorded.get('version')!r}"
            )
        expected = self.feeds()
        for section, field_name in (
            ("waveform", "input"),
            ("waveform", "sample_rate"),
            ("waveform", "clip_samples"),
            ("waveform", "max_seconds"),
            ("frames", "input"),
            ("frames", "channels"),
            ("frames", "image_size"),
            ("frames", "frame_count"),
            ("frames", "max_frames"),
            ("audio_mask", "input"),
            ("video_mask", "input"),
            ("outputs", "probabilities"),
        ):
            part = recorded.get(section)
            value = part.get(field_name) if isinstance(part, dict) else None
            if value != expected[section][field_name]:
                raise ManifestError(
                    where,
                    f"{key}.{section}.{field_name}",
                    f"{value!r} disagrees with what the rest of the manifest says "
                    f"({expected[section][field_name]!r})",
                )
        if recorded.get("modalities") != expected["modalities"]:
            raise ManifestError(
                where,
                f"{key}.modalities",
                f"{recorded.get('modalities')!r} disagrees with "
                f"preprocessing.data_settings.modalities ({expected['modalities']!r})",
            )


def input_limits(clip_seconds: float, frames: int) -> dict[str, float | int]:
    """The longest input a classifier artifact accepts: ``MAX_INPUT_FACTOR`` training clips.

    The exporter writes these into the manifest's ``preprocessing``; an artifact exported before they
    existed gets the same limits from its clip length. Attention cost grows with the square of the
    length (10 minutes of audio took 4 GB and 17 s), so an app splits long recordings into windows.
    """
    return {
        "max_input_seconds": round(clip_seconds * MAX_INPUT_FACTOR, 3),
        "max_frames": frames * MAX_INPUT_FACTOR,
    }


def _whole(
    values: dict[str, Any],
    key: str,
    where: str,
    *,
    low: int,
    high: int,
    prefix: str = "preprocessing.data_settings",
) -> int:
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ManifestError(
            where, f"{prefix}.{key}", f"expected a whole number from {low} to {high}, got {value!r}"
        )
    return value


def _seconds(values: dict[str, Any], key: str, where: str, prefix: str) -> float:
    value = values[key]
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= MAX_SECONDS
    ):
        raise ManifestError(
            where, f"{prefix}.{key}", f"expected seconds in (0, {MAX_SECONDS:g}], got {value!r}"
        )
    return float(value)


# --- the manifest section --------------------------------------------------------------------------

WAVEFORM_NOTE = "mono float32 in [-1, 1] at sample_rate Hz; up to max_input_seconds (trained on clip_seconds)"
FRAMES_NOTE = (
    "float32 RGB in [0, 1], (frames, 3, image_size, image_size), face crops; up to max_frames frames"
)
MASKS_NOTE = "audio_mask / video_mask: 1.0 when the modality is present, 0.0 (and zeros) when missing"
OUTPUT_NOTE = "logits and probabilities (softmax) over labels"


def preprocessing_section(
    labels: list[str], data_settings: dict[str, Any], data_plugin: str | None, media: dict[str, Any] | None
) -> dict[str, Any]:
    """The manifest's ``preprocessing`` of a classifier: what an app must feed, as prose and as data.

    ``data_settings`` are the dataset plugin's settings as trained (their :data:`CLIP_SETTINGS` are
    what the runtime reads); ``media`` how the runtime decodes files as training did (``MediaSpec``).
    """
    # the runtime refuses longer input: a length the model was never meant for costs memory quadratically
    limits = (
        input_limits(data_settings["clip_seconds"], data_settings["frames"])
        if {"clip_seconds", "frames"} <= data_settings.keys()
        else {}
    )
    section = AvPreprocessing(
        waveform=WAVEFORM_NOTE,
        frames=FRAMES_NOTE,
        max_input_seconds=limits.get("max_input_seconds"),
        max_frames=limits.get("max_frames"),
        masks=MASKS_NOTE,
        output=OUTPUT_NOTE,
        data_plugin=data_plugin,
        data_settings=data_settings,
    )
    if set(CLIP_SETTINGS) <= data_settings.keys():  # the input contract as data (names by role, rates, sizes,
        # ranges, limits): what runtime-js reads
        feeds = ClassifierSpec.from_manifest(
            {"labels": list(labels), "preprocessing": section.to_json()}, "export"
        ).feeds()
        section = dataclasses.replace(section, feeds=feeds)
    return dataclasses.replace(section, media=media).to_json()


def check_manifest(manifest: dict[str, Any], where: str) -> None:
    """The task section an ``av-classification`` runner reads, that decoding agrees with it, and that an
    ``enrollment`` section names tensors of its own."""
    spec = ClassifierSpec.from_manifest(manifest, where)
    _check_enrollment_names(manifest, where)
    media = MediaSpec.from_manifest(manifest, where)
    if media is not None:  # decoding must hand the model what the graph's contract says it reads
        for key, recorded, expected in (
            ("sample_rate", media.options.sample_rate, spec.sample_rate),
            ("clip_samples", media.clip_samples, spec.clip_samples),
            ("frames", media.options.frames, spec.frame_count),
            ("image_size", media.options.image_size, spec.image_size),
        ):
            if recorded != expected:
                raise ManifestError(
                    where,
                    f"preprocessing.media.{key}",
                    f"{recorded} disagrees with preprocessing.data_settings ({expected})",
                )


def _check_enrollment_names(manifest: dict[str, Any], where: str) -> None:
    """The profile inputs and the statistics output must not be the task's own tensors (the schema checks the
    rest of the section's shape; this runs before it only for what a schema cannot say)."""
    enrollment = manifest.get("enrollment")
    if not isinstance(enrollment, dict):
        return
    inputs = enrollment.get("profile_inputs")
    names = [inputs.get("mean"), inputs.get("std")] if isinstance(inputs, dict) else []
    taken = set(INPUT_NAMES)
    for role, name in zip(("mean", "std"), names):
        if not isinstance(name, str):
            continue  # the schema names what is wrong with it
        if name in taken:
            raise ManifestError(
                where,
                f"enrollment.profile_inputs.{role}",
                f"{name!r} is one of the task's inputs or named twice; expected a graph input of its own",
            )
        taken.add(name)
    output = enrollment.get("statistics_output")
    if isinstance(output, str) and output in (LOGITS, PROBABILITIES):
        raise ManifestError(
            where,
            "enrollment.statistics_output",
            f"{output!r} is one of the task's outputs; expected the graph's statistics output",
        )


# --- example inputs -------------------------------------------------------------------------------


def example_feeds(
    rng: np.random.Generator, batch: int, samples: int, frames: int, image_size: int, channels: int = CHANNELS
) -> dict[str, np.ndarray]:
    """A random batch shaped like the graph's inputs, both modalities present: quiet noise in [-0.1, 0.1]
    for the waveform, uniform [0, 1] frames. ``rng`` decides the values (pass a seeded one)."""
    return {
        WAVEFORM: (rng.uniform(-1.0, 1.0, (batch, samples)) * 0.1).astype(np.float32),
        FRAMES: rng.uniform(0.0, 1.0, (batch, frames, channels, image_size, image_size)).astype(np.float32),
        AUDIO_MASK: np.ones(batch, np.float32),
        VIDEO_MASK: np.ones(batch, np.float32),
    }


# --- verification thresholds, metric, runners, the spec ---------------------------------------------


@dataclass(frozen=True)
class ClassifierThresholds:
    """What export verification enforces against the PyTorch model (every number is reported either way)."""

    atol: float | None  # on logits; None: reported, not enforced (quantized graphs)
    min_top1: float  # top-1 agreement on decisive clips (near-ties are reported, not enforced)
    max_uar_drop: float  # validation UAR of PyTorch minus the artifact's
    min_decisive_share: float = 0.2  # fewer decisive clips: the export's noise is as large as the decisions

    def report(self) -> dict[str, Any]:
        return {
            "atol": self.atol,
            "min_top1": self.min_top1,
            "min_top1_on": "decisive clips",
            "max_uar_drop": self.max_uar_drop,
            "min_decisive_share": self.min_decisive_share,
        }


# by the precision of the exported graph: an fp32 graph must match PyTorch; int8 may move near-ties
THRESHOLDS: dict[str, ClassifierThresholds] = {
    "fp32": ClassifierThresholds(atol=1e-4, min_top1=1.0, max_uar_drop=0.01),
    "int8": ClassifierThresholds(atol=None, min_top1=0.99, max_uar_drop=0.03),
}

METRIC = TaskMetric(
    "uar",
    "max",
    "unweighted average recall: the mean recall over the classes present, so "
    "every label counts the same however many clips it has",
)


def litert_label(target: str) -> str:
    """`lexiedge bench`'s name of a LiteRT artifact: its target (``litert``, ``litert-int8``)."""
    return target or "litert"


RUNNERS = (
    RunnerEntry(
        "onnxruntime",
        NAME,
        "lexiedge_runtime.onnx_backends:open_onnx_classifier",
        ort_label,
        "ONNX Runtime session over model.onnx or model.ort (CPU, CUDA, TensorRT); OpenVINO over model.onnx "
        "(device openvino, extra [openvino])",
        ("onnxruntime",),
    ),
    RunnerEntry(
        "executorch",
        NAME,
        "lexiedge_runtime.executorch_runner:open_executorch_classifier",
        None,
        "ExecuTorch program model.pte, XNNPACK on the CPU, clip by clip (extra [executorch]; imports torch)",
        ("executorch.runtime",),
    ),
    RunnerEntry(
        "litert",
        NAME,
        "lexiedge_runtime.litert_runner:open_litert_classifier",
        litert_label,
        "LiteRT flatbuffer model.tflite (ai-edge-litert) on the CPU, clip by clip, each clip fitted to the "
        "graph's fixed length (extra [litert])",
        ("ai_edge_litert.interpreter",),
    ),
)

SPEC = TaskSpec(
    name=NAME,
    description="an audio-visual clip (waveform and face frames) in, a probability per label out",
    inputs=INPUTS,
    outputs=OUTPUTS,
    metric=METRIC,
    default_engine="onnxruntime",
    generates=False,
    check_manifest=check_manifest,
    section=AvSection,
    thresholds=THRESHOLDS,
)
