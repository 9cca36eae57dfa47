"""What a classifier artifact records about its decoding: the manifest's ``preprocessing.media``.

Training decodes each clip once with :func:`lexiedge_runtime.media.decode.decode_clip` and a set of
:class:`DecodeOptions`, then hands the model the centre ``clip_samples`` of the decoded audio (zero
padded) and the face crops scaled to [0, 1]. The exporter writes those options here (the data plugin
says which: ``DatasetPlugin.media_preprocessing``), and ``Classifier.predict_file`` decodes with
them, so a file reaches the model in an app exactly as it did in evaluation:

    "media": {"decoder": "lexiedge_runtime.media.decode", "version": 1, "sample_rate": 16000,
              "decoded_seconds": 3.0, "clip_samples": 24000, "frames": 4, "image_size": 48,
              "face_crop": true, "face_detector": "haar (...)", "audio": true, "video": true}

``decoded_seconds`` is the centre window decoding keeps (training keeps room for random crops around
it); ``clip_samples`` the model's input, the centre of that window. Everything is checked in plain
Python, without the ``[media]`` packages: a bad value is refused when the artifact loads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lexiedge_runtime.errors import ManifestError
from lexiedge_runtime.tasks.sections import Section, required

MEDIA_DECODER = "lexiedge_runtime.media.decode"
DECODER_VERSION = 1  # bump when decode_clip's output for the same options changes (artifacts record it)
_KEY = "preprocessing.media"


@dataclass(frozen=True, kw_only=True)
class MediaSection(Section):
    """preprocessing.media: the decoder and options a classifier's files are decoded with, as in training."""

    decoder: Literal[MEDIA_DECODER] = required()
    version: Literal[DECODER_VERSION] = required()
    sample_rate: int = required(minimum=1000, maximum=384_000)
    decoded_seconds: float = required(exclusiveMinimum=0, maximum=3600)
    clip_samples: int = required(minimum=1, maximum=384_000 * 3600)
    frames: int = required(minimum=1, maximum=10_000)
    image_size: int = required(minimum=1, maximum=4096)
    face_crop: bool = required()
    face_detector: str | None = required()  # the detector training used; null without face crops
    audio: bool = required()
    video: bool = required()


@dataclass(frozen=True)
class DecodeOptions:
    """What decoding produces; every field changes the output and so keys the feature cache."""

    sample_rate: int
    clip_seconds: float  # audio kept: the centre window of this length (the clip's, or more for random crops)
    frames: int
    image_size: int
    face_crop: bool
    audio: bool
    video: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MediaSpec:
    """The decoding a classifier was evaluated with: options, the model's audio length, the face detector."""

    options: DecodeOptions
    clip_samples: int  # the model's waveform: the centre of the decoded audio, zero-padded to this length
    face_detector: str | None = None  # the detector training used (FaceDetector.name), None without face crops

    def to_manifest(self) -> dict[str, Any]:
        return MediaSection(
            decoder=MEDIA_DECODER,
            version=DECODER_VERSION,
            sample_rate=self.options.sample_rate,
            decoded_seconds=self.options.clip_seconds,
            clip_samples=self.clip_samples,
            frames=self.options.frames,
            image_size=self.options.image_size,
            face_crop=self.options.face_crop,
            face_detector=self.face_detector,
            audio=self.options.audio,
            video=self.options.video,
        ).to_json()

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], where: str) -> MediaSpec | None:
        """The recorded spec (None when the artifact records none), or a :class:`ManifestError` naming the key."""
        media = (manifest.get("preprocessing") or {}).get("media")
        if media is None:
            return None
        if not isinstance(media, dict):
            raise ManifestError(where, _KEY, f"expected a mapping, got {type(media).__name__}")
        if media.get("decoder") != MEDIA_DECODER:
            raise ManifestError(where, f"{_KEY}.decoder", f"expected {MEDIA_DECODER!r} (the only decoder this runtime "
                                                          f"has), got {media.get('decoder')!r}")
        if media.get("version") != DECODER_VERSION:
            raise ManifestError(
                where, f"{_KEY}.version", f"the artifact was trained with decoder version {media.get('version')!r}; "
                f"this runtime decodes as version {DECODER_VERSION}: use the lexiedge-runtime it was exported with"
            )
        detector = media.get("face_detector")
        if detector is not None and not isinstance(detector, str):
            raise ManifestError(where, f"{_KEY}.face_detector", f"expected a name or null, got {detector!r}")
        options = DecodeOptions(
            sample_rate=_whole(media, "sample_rate", where, 1000, 384_000),
            clip_seconds=_seconds(media, "decoded_seconds", where),
            frames=_whole(media, "frames", where, 1, 10_000),
            image_size=_whole(media, "image_size", where, 1, 4096),
            face_crop=_flag(media, "face_crop", where),
            audio=_flag(media, "audio", where),
            video=_flag(media, "video", where),
        )
        return cls(options, _whole(media, "clip_samples", where, 1, 384_000 * 3600), detector)


def _whole(values: dict[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = values.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ManifestError(where, f"{_KEY}.{key}", f"expected a whole number from {low} to {high}, got {value!r}")
    return value


def _seconds(values: dict[str, Any], key: str, where: str) -> float:
    value = values.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value <= 3600:
        raise ManifestError(where, f"{_KEY}.{key}", f"expected seconds in (0, 3600], got {value!r}")
    return float(value)


def _flag(values: dict[str, Any], key: str, where: str) -> bool:
    value = values.get(key)
    if not isinstance(value, bool):
        raise ManifestError(where, f"{_KEY}.{key}", f"expected true or false, got {value!r}")
    return value
