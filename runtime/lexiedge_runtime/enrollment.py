"""Speaker enrollment: a speaker's profile from a few of their clips, for a model normalised by its speaker.

A classifier trained with per-speaker feature normalisation (emotion-av's ``feature_norm: speaker``)
exports a graph with one more output, the statistics of each clip's features, and two optional inputs,
the speaker's profile (the manifest's ``enrollment`` section,
:class:`~lexiedge_runtime.tasks.av_classification.EnrollmentSection`, says which). Fed nothing, the
graph normalises with the global training statistics: the fallback for a speaker nobody enrolled.

    profile = classifier.calibrate(["me-1.wav", "me-2.wav", ...])   # or waveforms; >= enrollment.min_clips
    profile.save("me.speaker.json")                                  # two vectors and the model's identity
    classifier.predict_file("clip.wav", speaker=profile).normalization   # "speaker" (without: "global")

A :class:`SpeakerProfile` holds statistics only: per feature the mean and standard deviation over the
speaker's clips, computed by the task's rule
(:func:`~lexiedge_runtime.tasks.av_classification.speaker_profile`, the one training used), and the
sha256 of the graph that computed them. Nothing of the audio is kept. A profile is refused by any
other artifact (another graph computes other features), in one line
(:class:`~lexiedge_runtime.errors.SpeakerProfileError`).

Files are decoded as ``predict_file`` decodes them (the centre training clip of their audio; video is
not decoded); waveforms are used as given, as ``predict`` uses them. Every clip weighs the same.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lexiedge_runtime.errors import ArtifactError, SpeakerProfileError, TooFewClipsError
from lexiedge_runtime.tasks.av_classification import EnrollmentSection, speaker_profile

PROFILE_FORMAT = "lexiedge-speaker-profile"
PROFILE_VERSION = 1
MAX_PROFILE_BYTES = 1 << 20  # a profile is two vectors: a few KB
Normalization = Literal["speaker", "global"]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

NOT_ENROLLABLE = (
    "this model is not normalised by its speaker (its manifest has no enrollment section), so it takes no "
    "speaker profile: classify without one"
)


@dataclass(frozen=True, eq=False)
class SpeakerProfile:
    """One speaker's feature statistics for one artifact: ``mean`` and ``std`` (features,) float32.

    ``clips``: how many clips they were computed from; ``graph_sha256``: the graph that computed them
    (the artifact's identity: a profile is fed only to that graph); ``model``: the artifact's model and
    target, for people reading the file.
    """

    mean: np.ndarray
    std: np.ndarray
    clips: int
    graph_sha256: str
    model: str = field(default="")

    @property
    def features(self) -> int:
        return int(self.mean.shape[0])

    def to_json(self) -> dict[str, Any]:
        """The profile as JSON: float32 values written as the shortest decimals that read back the same."""
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "graph_sha256": self.graph_sha256,
            "model": self.model,
            "clips": self.clips,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    @classmethod
    def from_json(cls, value: Any, where: str = "the speaker profile") -> SpeakerProfile:
        """A profile from its JSON, or a :class:`SpeakerProfileError` naming the first thing wrong."""
        if not isinstance(value, dict) or value.get("format") != PROFILE_FORMAT:
            raise SpeakerProfileError(
                f'{where} is not a speaker profile (expected "format": "{PROFILE_FORMAT}")'
            )
        if value.get("version") != PROFILE_VERSION:
            raise SpeakerProfileError(
                f"{where}: version {value.get('version')!r}; this runtime reads "
                f"speaker profiles of version {PROFILE_VERSION}"
            )
        sha = value.get("graph_sha256")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise SpeakerProfileError(
                f"{where}: graph_sha256: expected the 64 hex digits of the model's graph"
            )
        clips = value.get("clips")
        if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
            raise SpeakerProfileError(f"{where}: clips: expected a whole number >= 1, got {clips!r}"[:200])
        mean, std = (_vector(value.get(key), key, where) for key in ("mean", "std"))
        if mean.shape != std.shape:
            raise SpeakerProfileError(
                f"{where}: mean has {mean.size} values but std {std.size}; expected one each per feature"
            )
        if not (std > 0).all():
            raise SpeakerProfileError(f"{where}: std: expected values above 0 (standard deviations)")
        model = value.get("model")
        return cls(mean, std, clips, sha, model if isinstance(model, str) else "")

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON to ``path`` (through a temporary file: never half-written); a path
        that cannot be written is a :class:`SpeakerProfileError` naming it."""
        path = Path(path)
        text = json.dumps(self.to_json(), indent=1) + "\n"
        temporary: Path | None = None
        try:
            with tempfile.NamedTemporaryFile(
                "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False, encoding="utf-8"
            ) as handle:
                temporary = Path(handle.name)
                handle.write(text)
            os.replace(temporary, path)
        except BaseException as exc:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
            if isinstance(exc, OSError):  # no such folder, no permission, a full disk, a folder at ``path``
                raise SpeakerProfileError(
                    f"{path}: cannot write the speaker profile there ({_reason(exc)})"
                ) from None
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> SpeakerProfile:
        """A profile saved by :meth:`save`, or a :class:`SpeakerProfileError` saying why ``path`` is not
        one."""
        path = Path(path)
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_PROFILE_BYTES + 1)
        except OSError as exc:
            raise SpeakerProfileError(
                f"{path}: cannot read the speaker profile ({exc.strerror or exc})"
            ) from None
        if len(raw) > MAX_PROFILE_BYTES:
            raise SpeakerProfileError(f"{path}: over {MAX_PROFILE_BYTES >> 10} KiB; not a speaker profile")
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise SpeakerProfileError(f"{path} is not a speaker profile (not JSON)") from None
        return cls.from_json(value, str(path))

    def __repr__(self) -> str:
        return f"SpeakerProfile(features={self.features}, clips={self.clips}, graph={self.graph_sha256[:12]})"


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _vector(value: Any, key: str, where: str) -> np.ndarray:
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
        )
    ):
        raise SpeakerProfileError(
            f"{where}: {key}: expected a non-empty list of finite numbers, one per feature"
        )
    return np.asarray(value, np.float32)


def artifact_identity(manifest: dict[str, Any]) -> str:
    """The sha256 of the artifact's graph (``runtime.graph``), which the manifest lists with every file."""
    files = manifest.get("files") or {}
    graph = (manifest.get("runtime") or {}).get("graph") or "model.onnx"
    return str(files[graph]["sha256"])


@dataclass(frozen=True)
class Enrollment:
    """What an artifact's ``enrollment`` section says, with the artifact's identity: checks clip counts and
    profiles and builds the graph's profile feeds."""

    section: EnrollmentSection
    graph_sha256: str
    model: str

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> Enrollment | None:
        section = EnrollmentSection.read(manifest)
        if section is None:
            return None
        model = "/".join(
            str(manifest[key]) for key in ("model", "target") if isinstance(manifest.get(key), str)
        )
        return cls(section, artifact_identity(manifest), model)

    @property
    def statistics_output(self) -> str:
        return self.section.statistics_output

    def check_count(self, count: int) -> None:
        if count < self.section.min_clips:
            raise TooFewClipsError(
                f"{count} enrollment clip(s) given; this model makes a speaker profile from at least "
                f"{self.section.min_clips} clips of the speaker (enrollment.min_clips)"
            )

    def profile(self, statistics: np.ndarray) -> SpeakerProfile:
        """The profile of the clips whose statistics output is ``statistics`` (clips, 2, features)."""
        self.check_count(statistics.shape[0])
        if statistics.shape[1:] != (2, self.section.features):
            raise ArtifactError(
                f"the graph's {self.statistics_output} output has shape {statistics.shape}; the "
                f"manifest's enrollment section says (clips, 2, {self.section.features})"
            )
        mean, std = speaker_profile(statistics, self.section.variance_floor)
        return SpeakerProfile(mean, std, int(statistics.shape[0]), self.graph_sha256, self.model)

    def feeds(self, speaker: Any) -> dict[str, np.ndarray]:
        """The graph's profile inputs, (1, features) each, for a profile made with this artifact."""
        if not isinstance(speaker, SpeakerProfile):
            raise SpeakerProfileError(
                f"speaker must be a SpeakerProfile (from calibrate() or a saved one loaded), got "
                f"{type(speaker).__name__}"
            )
        if speaker.graph_sha256 != self.graph_sha256:
            raise SpeakerProfileError(
                "the speaker profile was made with another model (graph sha256 "
                f"{speaker.graph_sha256[:12]}..., "
                f"this model's {self.graph_sha256[:12]}...): calibrate the speaker again with this model"
            )
        if speaker.features != self.section.features:  # the same graph computes the same count: a hand edit
            raise SpeakerProfileError(
                f"the speaker profile has {speaker.features} features; this model reads "
                f"{self.section.features} (enrollment.features)"
            )
        inputs = self.section.profile_inputs
        return {inputs.mean: speaker.mean[np.newaxis], inputs.std: speaker.std[np.newaxis]}


def clip_list(clips: Any) -> list[Any]:
    """``calibrate``'s clips as a list (paths and 1-D waveforms; the rows of a 2-D array), or one line
    why not."""
    from lexiedge_runtime.errors import InputShapeError, InputValueError

    if isinstance(clips, np.ndarray):
        if clips.ndim != 2:
            raise InputShapeError(
                f"enrollment clips have shape {clips.shape}; expected a list of the speaker's clips (file "
                "paths or "
                "mono waveforms) or a (clips, samples) array"
            )
        return list(clips)
    if isinstance(clips, (str, os.PathLike)) or not isinstance(clips, Sequence):
        raise InputValueError(
            f"calibrate takes a list of the speaker's clips (file paths or mono waveforms), got one "
            f"{type(clips).__name__}"
        )
    return list(clips)


__all__ = [
    "NOT_ENROLLABLE",
    "Enrollment",
    "Normalization",
    "SpeakerProfile",
    "artifact_identity",
    "clip_list",
]
