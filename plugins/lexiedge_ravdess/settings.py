"""The ``models.<name>.data`` section of a profile whose data plugin is ``ravdess``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lexiedge.api import PluginSettings

Modality = Literal["audio", "video"]
CROP_ROOM = 2.0  # with random_crop, the cache keeps this many clip lengths of audio around the centre


class SplitSettings(PluginSettings):
    """Actors per split; no actor may be in two splits (RAVDESS is split by speaker, never by clip)."""

    train: list[int] = Field(min_length=1, description="actor numbers used for training")
    val: list[int] = Field(default_factory=list, description="actor numbers for validation (may be empty)")
    test: list[int] = Field(default_factory=list, description="actor numbers for the final test (may be empty)")

    @field_validator("train", "val", "test")
    @classmethod
    def _positive_and_unique(cls, actors: list[int]) -> list[int]:
        if any(actor < 1 for actor in actors):
            raise ValueError(f"actor numbers start at 1, got {sorted(actors)}")
        if len(set(actors)) != len(actors):
            raise ValueError(f"an actor is listed twice: {actors}")
        return actors

    @model_validator(mode="after")
    def _disjoint(self) -> SplitSettings:
        named = {"train": set(self.train), "val": set(self.val), "test": set(self.test)}
        for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
            both = named[first] & named[second]
            if both:
                raise ValueError(f"actors {sorted(both)} are in both {first} and {second}; splits must not share actors")
        return self


class EnrollmentSettings(PluginSettings):
    """Which clips give each speaker's feature statistics (see :mod:`lexiedge_ravdess.enrollment`)."""

    clips: Literal["neutral"] | int = Field(
        description="neutral: each speaker's neutral and calm clips; K (>= 2): K of each speaker's clips, at "
        "random"
    )
    seed: int = Field(0, description="seed of the random choice (with the actor number)")

    @field_validator("clips")
    @classmethod
    def _at_least_two(cls, clips: str | int) -> str | int:
        if isinstance(clips, int) and clips < 2:
            raise ValueError(f"enrollment needs at least 2 clips per speaker, got {clips}")
        return clips


class RavdessSettings(PluginSettings):
    """How RAVDESS clips become training examples; every field but ``seed``/``split``/``data_fraction``
    changes the preprocessed features and so keys the feature cache."""

    sample_rate: int = Field(16000, ge=8000, le=96000, description="audio rate in Hz the model reads")
    clip_seconds: float = Field(3.0, gt=0.0, le=30.0, description="audio length: centre crop or zero pad")
    frames: int = Field(8, ge=1, le=64, description="video frames sampled uniformly over each clip")
    image_size: int = Field(64, ge=16, le=512, description="side of the square face crop in pixels")
    modalities: list[Modality] = Field(
        default_factory=lambda: ["audio", "video"], min_length=1, description="drop one to train single-modality"
    )
    data_fraction: float = Field(1.0, gt=0.0, le=1.0, description="share of training clips kept, per class")
    seed: int = Field(0, description="seed of the data_fraction sample and of proportional splits")
    split: SplitSettings | None = Field(None, description="actors per split (default 1-16 / 17-20 / 21-24)")
    include_song: bool = Field(False, description="also use sung clips (vocal channel 02)")
    face_crop: bool = Field(True, description="crop the largest detected face (centre square when none is found)")
    speed_perturb: list[float] = Field(
        default_factory=list,
        description=(
            "training clips: each read plays the audio at a speed drawn from this list (Kaldi's [0.9, 1.0, 1.1]): "
            "faster and higher, or slower and lower, as another speaker would say it; empty: off"
        ),
    )
    random_crop: bool = Field(
        True,
        description=(
            "training clips: a random clip_seconds window of the recording each time it is read (validation, "
            "test and inference: the centre window); the cache keeps up to 2 x clip_seconds around the centre"
        ),
    )

    enrollment: EnrollmentSettings | None = Field(
        None,
        description=(
            "each speaker's enrollment clips: validation and test score the other clips, and a model that "
            "normalises by speaker (emotion-av feature_norm: speaker) reads their statistics; null: none"
        ),
    )

    @field_validator("speed_perturb")
    @classmethod
    def _sane_speeds(cls, factors: list[float]) -> list[float]:
        if any(not 0.5 <= factor <= 2.0 for factor in factors):
            raise ValueError(f"speed factors must lie in [0.5, 2.0], got {factors}")
        return factors

    @field_validator("modalities")
    @classmethod
    def _no_repeats(cls, modalities: list[str]) -> list[str]:
        if len(set(modalities)) != len(modalities):
            raise ValueError(f"a modality is listed twice: {modalities}")
        return modalities

    @property
    def kept_seconds(self) -> float:
        """Audio kept per clip in the feature cache: room for random crops around the centre window."""
        return self.clip_seconds * (CROP_ROOM if self.random_crop else 1.0)

    @property
    def num_samples(self) -> int:
        """Waveform length S of every training example."""
        return round(self.clip_seconds * self.sample_rate)

    @property
    def use_audio(self) -> bool:
        return "audio" in self.modalities

    @property
    def use_video(self) -> bool:
        return "video" in self.modalities
