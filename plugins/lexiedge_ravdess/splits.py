"""Splitting RAVDESS by actor, and thinning the training split per class.

Splits are by speaker: the same actor in train and test would measure how well the model remembers a
voice and a face, not an emotion. The published protocol (and the seeds' 1920/480/480 clips) is actors
1-16 / 17-20 / 21-24; a set with fewer actors is split in the same 16:4:4 proportions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from lexiedge_ravdess.labels import ClipName
from lexiedge_ravdess.settings import SplitSettings

DEFAULT_SPLIT = SplitSettings(train=list(range(1, 17)), val=list(range(17, 21)), test=list(range(21, 25)))
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class ActorSplit:
    """Actors of each split (only actors present in the data), and present actors left out of all three."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    unassigned: tuple[int, ...] = ()

    def of(self, split: str) -> tuple[int, ...]:
        return {"train": self.train, "val": self.val, "test": self.test}[split]


def proportional_split(actors: Sequence[int]) -> ActorSplit:
    """Split sorted actors 16:4:4, the highest numbers going to test (as in the default split).

    With three or more actors every split gets at least one; 24 actors give exactly the default split.
    """
    ordered = sorted(set(actors))
    count = len(ordered)
    if count >= 3:
        held_out = max(1, math.floor(count * 4 / 24 + 0.5))
        n_val = n_test = min(held_out, (count - 1) // 2)
    else:
        n_val, n_test = count - 1, 0  # two actors: train and val; one actor: train only
    n_train = count - n_val - n_test
    return ActorSplit(
        train=tuple(ordered[:n_train]),
        val=tuple(ordered[n_train : n_train + n_val]),
        test=tuple(ordered[n_train + n_val :]),
    )


def assign_actors(present: Iterable[int], split: SplitSettings | None) -> ActorSplit:
    """The actors of each split among those ``present``.

    An explicit ``split`` is used as given (actors it names that are absent are simply empty). Without
    one, the default 1-16/17-20/21-24 is used when it gives every split an actor and covers every actor
    present; otherwise the present actors are split proportionally.
    """
    actors = sorted(set(present))
    chosen = split if split is not None else DEFAULT_SPLIT
    named = set(chosen.train) | set(chosen.val) | set(chosen.test)
    result = ActorSplit(
        train=tuple(a for a in actors if a in chosen.train),
        val=tuple(a for a in actors if a in chosen.val),
        test=tuple(a for a in actors if a in chosen.test),
        unassigned=tuple(a for a in actors if a not in named),
    )
    if split is not None:
        return result
    if result.unassigned or not (result.train and result.val and result.test):
        return proportional_split(actors)
    return result


def sample_per_class(clips: Sequence[ClipName], fraction: float, seed: int) -> list[ClipName]:
    """Keep ``fraction`` of the clips of each emotion (at least one), drawn with ``seed``; sorted by path.

    Stratified so that a half-size training set (the rtx3050 seed's 960 clips) keeps the class balance.
    """
    if fraction >= 1.0:
        return sorted(clips)
    by_class: dict[int, list[ClipName]] = defaultdict(list)
    for clip in sorted(clips):
        by_class[clip.emotion].append(clip)
    rng = np.random.default_rng(seed)
    kept: list[ClipName] = []
    for emotion in sorted(by_class):
        members = by_class[emotion]
        keep = max(1, math.floor(len(members) * fraction + 0.5))
        chosen = rng.choice(len(members), size=keep, replace=False)
        kept.extend(members[i] for i in chosen)
    return sorted(kept)
