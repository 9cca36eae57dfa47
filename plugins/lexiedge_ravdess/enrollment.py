"""Enrollment: each speaker's feature statistics from a few of their own clips (``data.enrollment``).

A model that normalises its features by speaker (emotion-av's ``feature_norm: speaker``) reads, beside
every clip, its speaker's statistics: the mean and standard deviation of each feature over the frames
of the speaker's enrollment clips. ``data.enrollment.clips`` chooses them per speaker:

- ``neutral``: the speaker's neutral and calm clips (what an app asks a new user to read in a calm
  voice; RAVDESS has 12 per actor);
- an integer K: K of the speaker's clips drawn at random (seeded by ``data.enrollment.seed`` and the
  actor; recordings an app collects without labels).

Never the clip itself, never a label of a scored clip: a training clip that is one of its speaker's
enrollment clips gets the statistics of the speaker's other enrollment clips (leave one out);
validation and test splits score only the clips that are not enrollment clips, whether the model reads
statistics or not, so a recipe scored with and without enrollment is scored on the same clips.

The statistics of one clip are the model's (``BuiltModel.extras["clip_statistics"]``: per feature,
the mean and the mean square over the clip's frames, of the centre window every evaluation reads), and
a speaker's are their average: the runtime computes a speaker profile the same way from the exported
graph's ``feature_stats`` output.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lexiedge.errors import UsageError
from lexiedge_ravdess.labels import EMOTIONS, ClipName
from lexiedge_ravdess.settings import EnrollmentSettings
from lexiedge_runtime.tasks.av_classification import (
    MIN_ENROLLMENT_CLIPS,
    PROFILE_VARIANCE_FLOOR,
    speaker_profile,
)

NEUTRAL = "neutral"
NEUTRAL_EMOTIONS = (EMOTIONS.index("neutral"), EMOTIONS.index("calm"))

# the model's: waveforms (N, S) float32 -> (N, 2, F), each clip's per-feature mean and mean square over frames
ClipStatistics = Callable[[np.ndarray], np.ndarray]


def describe(settings: EnrollmentSettings) -> str:
    return "neutral and calm clips" if settings.clips == NEUTRAL else f"{settings.clips} random clips"


def choose(clips: Sequence[ClipName], settings: EnrollmentSettings) -> set[ClipName]:
    """The enrollment clips of every actor among ``clips`` (those with audio: statistics are of the voice);
    one line when an actor has too few."""
    by_actor: dict[int, list[ClipName]] = defaultdict(list)
    for clip in sorted(clips):
        if clip.has_audio:
            by_actor[clip.actor].append(clip)
    chosen: set[ClipName] = set()
    for actor, own in sorted(by_actor.items()):
        if settings.clips == NEUTRAL:
            picked = [clip for clip in own if clip.emotion in NEUTRAL_EMOTIONS]
        else:
            count = min(int(settings.clips), len(own))
            rng = np.random.default_rng([settings.seed, actor])
            picked = [own[i] for i in sorted(rng.choice(len(own), size=count, replace=False))]
        if len(picked) < MIN_ENROLLMENT_CLIPS or len(picked) == len(own):
            raise UsageError(
                f"actor {actor:02d} has {len(own)} clips with audio, {len(picked)} of them enrollment clips "
                f"(data.enrollment.clips: {settings.clips}); enrollment needs at least "
                f"{MIN_ENROLLMENT_CLIPS} per speaker and at least one clip left to score"
            )
        chosen.update(picked)
    return chosen


@dataclass(frozen=True)
class SpeakerStatistics:
    """Per-feature mean and standard deviation (F,) float32 of one speaker's enrollment frames."""

    mean: np.ndarray
    std: np.ndarray


def combine(per_clip: np.ndarray) -> SpeakerStatistics:
    """(N, 2, F) per-clip means and mean squares -> the speaker's mean and std: the runtime's rule
    (:func:`lexiedge_runtime.tasks.av_classification.speaker_profile`): training sees what apps feed."""
    mean, std = speaker_profile(per_clip, PROFILE_VARIANCE_FLOOR)
    return SpeakerStatistics(mean, std)


def item_statistics(
    clips: Sequence[ClipName], enrollment: set[ClipName], per_clip: dict[ClipName, np.ndarray]
) -> list[SpeakerStatistics]:
    """Each clip's speaker statistics: of the speaker's enrollment clips, its own left out."""
    by_actor: dict[int, list[ClipName]] = defaultdict(list)
    for clip in sorted(enrollment):
        by_actor[clip.actor].append(clip)
    whole = {actor: combine(np.stack([per_clip[c] for c in own])) for actor, own in by_actor.items()}
    result = []
    for clip in clips:
        if clip in enrollment:
            others = [c for c in by_actor[clip.actor] if c != clip]
            result.append(combine(np.stack([per_clip[c] for c in others])))
        else:
            result.append(whole[clip.actor])
    return result
