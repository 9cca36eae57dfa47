"""From a data folder to train/val/test datasets: find, split by actor, cache, report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lexiedge.api import DataSplits
from lexiedge.errors import UsageError
from lexiedge_ravdess.cache import CachedClip, FailedClip, FeatureCache
from lexiedge_ravdess import enrollment as enrollment_choice
from lexiedge_ravdess.dataset import CachedClipDataset, collate_batch
from lexiedge_ravdess.enrollment import ClipStatistics, SpeakerStatistics
from lexiedge_ravdess.labels import EMOTIONS, ClipName, find_clips
from lexiedge_ravdess.preprocessing import decode_options
from lexiedge_ravdess.settings import RavdessSettings
from lexiedge_ravdess.splits import SPLIT_NAMES, ActorSplit, assign_actors, sample_per_class
from lexiedge_runtime.media.faces import face_detector

if TYPE_CHECKING:
    from rich.console import Console

LAYOUT = "Actor_NN/MM-VV-EE-II-SS-RR-AA.mp4|wav"
NO_DATA_HINT = "make a small synthetic set with `lexiedge data synth-av --out DIR`"


def load_splits(
    settings: RavdessSettings,
    source: Path | None,
    *,
    cache_dir: Path,
    console: Console,
    workers: int | None = None,
    clip_statistics: ClipStatistics | None = None,
) -> DataSplits:
    """Datasets of the actor splits of ``source``, preprocessed once into ``cache_dir``.

    Invalid names and clips that do not decode are reported (one line each on ``console``) and skipped;
    they never stop a run. ``workers`` decoding processes (default: by core count and work). With
    ``settings.enrollment``, validation and test keep only the clips that are not enrollment clips, and
    with ``clip_statistics`` (the model's, see :mod:`lexiedge_ravdess.enrollment`) every clip carries its
    speaker's statistics.
    """
    found = find_usable_clips(settings, source)
    root, usable, invalid, songs, mute = found.root, found.usable, found.invalid, found.songs, found.mute
    for problem in invalid:
        console.print(f"[yellow]ravdess: skipped[/] {problem}", highlight=False, soft_wrap=True)
    actors = assign_actors({c.actor for c in usable}, settings.split)
    chosen = _clips_per_split(usable, actors, settings)
    if not chosen["train"]:
        present = sorted({c.actor for c in usable})
        raise UsageError(f"{root}: no training clips: train actors {list(actors.train)}; actors present: {present}")

    cache = FeatureCache(cache_dir, decode_options(settings))
    needed = sorted({clip for split_clips in chosen.values() for clip in split_clips})
    entries, failed = _build_cache(cache, needed, console, workers)
    for failure in failed:
        name = failure.clip.path.relative_to(root)
        console.print(f"[yellow]ravdess: skipped[/] {name}: cannot decode: {failure.reason}", highlight=False, soft_wrap=True)
    by_clip = {entry.clip: entry for entry in entries}
    kept = {name: [by_clip[c] for c in chosen[name] if c in by_clip] for name in SPLIT_NAMES}
    if not kept["train"]:
        raise UsageError(f"{root}: none of the {len(chosen['train'])} training clips could be decoded")
    enrollment_summary = None
    statistics: dict[str, list[SpeakerStatistics]] = {}
    if settings.enrollment is not None:
        kept, statistics, enrollment_summary = _enroll(kept, settings, clip_statistics)
    datasets = {
        name: CachedClipDataset(kept[name], settings, train=name == "train")
        if kept[name] else None
        for name in SPLIT_NAMES
    }
    for name, per_clip in statistics.items():
        if datasets[name] is not None:
            datasets[name].speaker_statistics = per_clip
    summary = _summary(root, settings, actors, kept, invalid, failed, songs, mute, cache)
    if enrollment_summary is not None:
        summary["enrollment"] = enrollment_summary
    return DataSplits(
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        collate=collate_batch,
        labels=list(EMOTIONS),
        summary=summary,
    )


@dataclass(frozen=True)
class FoundClips:
    """The clips of a data folder the settings can use, and those they cannot (by reason)."""

    root: Path
    usable: list[ClipName]
    invalid: list[str]  # one problem line per media file whose name is not a RAVDESS name
    songs: list[ClipName]  # left out by include_song=false
    mute: list[ClipName]  # no stream in the chosen modalities

    @property
    def actors(self) -> list[int]:
        return sorted({clip.actor for clip in self.usable})


def find_usable_clips(settings: RavdessSettings, source: Path | None) -> FoundClips:
    """The usable clips under ``source`` by their names alone (nothing decoded); one line if none."""
    if source is None:
        raise UsageError(
            f"the ravdess data plugin needs a data folder: pass --data DIR ({LAYOUT}); or {NO_DATA_HINT}"
        )
    root = Path(source)
    if not root.is_dir():
        raise UsageError(f"{root}: no such data folder (expected RAVDESS {LAYOUT}); or {NO_DATA_HINT}")
    clips, invalid = find_clips(root)
    songs = [c for c in clips if c.is_song and not settings.include_song]
    mute = [c for c in clips if not _has_usable_stream(c, settings)]
    left_out = set(songs) | set(mute)
    usable = [c for c in clips if c not in left_out]
    if not usable:
        raise UsageError(
            f"{root}: no usable RAVDESS clips ({len(clips)} valid names, {len(invalid)} invalid, "
            f"{len(songs)} songs left out by include_song=false, {len(mute)} without a stream in modalities "
            f"{settings.modalities}); "
            f"expected {LAYOUT}"
        )
    return FoundClips(root, usable, invalid, songs, mute)


def _enroll(
    kept: dict[str, list[CachedClip]], settings: RavdessSettings, clip_statistics: ClipStatistics | None
) -> tuple[dict[str, list[CachedClip]], dict[str, list[SpeakerStatistics]], dict[str, Any]]:
    """Validation and test without their enrollment clips; every clip's speaker statistics when the model
    reads them (training clips that enroll: of their speaker's other enrollment clips)."""
    enrollment = settings.enrollment
    assert enrollment is not None
    chosen = {name: enrollment_choice.choose([e.clip for e in entries], enrollment) if entries else set()
              for name, entries in kept.items()}
    statistics: dict[str, list[SpeakerStatistics]] = {}
    if clip_statistics is not None:
        centre = settings.model_copy(update={"random_crop": False})
        for name, entries in kept.items():
            enrolling = [e for e in entries if e.clip in chosen[name]]
            if not enrolling:
                continue
            reader = CachedClipDataset(enrolling, centre)  # the centre window, as evaluation reads a clip
            waveforms = np.stack([reader[i]["waveform"].numpy() for i in range(len(reader))])
            measured = np.asarray(clip_statistics(waveforms), np.float64)
            per_clip = dict(zip([e.clip for e in enrolling], measured))
            scored = entries if name == "train" else [e for e in entries if e.clip not in chosen[name]]
            clips = [e.clip for e in scored]
            statistics[name] = enrollment_choice.item_statistics(clips, chosen[name], per_clip)
    scored = {name: entries if name == "train" else [e for e in entries if e.clip not in chosen[name]]
              for name, entries in kept.items()}
    summary = {"clips": enrollment.clips, "seed": enrollment.seed,
               "statistics_read": clip_statistics is not None,
               "enrollment_clips": {name: len(clips) for name, clips in chosen.items()},
               "left_out_of_scoring": {name: len(kept[name]) - len(scored[name]) for name in kept}}
    return scored, statistics, summary


def _has_usable_stream(clip: ClipName, settings: RavdessSettings) -> bool:
    """A clip whose only stream is a dropped modality would be all zeros and all masks 0: nothing to learn."""
    return (clip.has_audio and settings.use_audio) or (clip.has_video and settings.use_video)


def _clips_per_split(usable: Sequence[ClipName], actors: ActorSplit, settings: RavdessSettings) -> dict[str, list[ClipName]]:
    chosen = {name: [c for c in usable if c.actor in actors.of(name)] for name in SPLIT_NAMES}
    # Only training is thinned: validation and test stay whole so scores remain comparable across fractions.
    chosen["train"] = sample_per_class(chosen["train"], settings.data_fraction, settings.seed)
    return chosen


def _build_cache(
    cache: FeatureCache, clips: list[ClipName], console: Console, workers: int | None
) -> tuple[list[CachedClip], list[FailedClip]]:
    if console.is_terminal:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("ravdess: decoding clips into the feature cache", total=None)
            entries, failed = cache.build(
                clips, workers=workers, progress=lambda done, total: progress.update(task, completed=done, total=total)
            )
    else:  # logs and CI: one line when done, no redraws
        entries, failed = cache.build(clips, workers=workers)
    stats = cache.stats
    if stats.misses:
        console.print(
            f"ravdess: decoded {stats.decoded} clips into {cache.directory} ({stats.hits} were cached)",
            highlight=False,
            soft_wrap=True,
        )
    return entries, failed


def _summary(
    root: Path,
    settings: RavdessSettings,
    actors: ActorSplit,
    kept: dict[str, list[CachedClip]],
    invalid: list[str],
    failed: list[FailedClip],
    songs: list[ClipName],
    mute: list[ClipName],
    cache: FeatureCache,
) -> dict[str, Any]:
    """Plain JSON-ready numbers for the run directory and the trainer's report."""
    per_class = {
        name: {EMOTIONS[e]: n for e, n in sorted(Counter(entry.clip.emotion for entry in entries).items())}
        for name, entries in kept.items()
    }
    missing = {
        name: {
            "audio": sum(1 for e in entries if e.audio is None or not settings.use_audio),
            "video": sum(1 for e in entries if e.video is None or not settings.use_video),
        }
        for name, entries in kept.items()
    }
    video_entries = [e for entries in kept.values() for e in entries if e.video is not None]
    return {
        "source": str(root),
        "clips": {name: len(entries) for name, entries in kept.items()},
        "per_class": per_class,
        "actors": {"train": list(actors.train), "val": list(actors.val), "test": list(actors.test),
                   "unassigned": list(actors.unassigned)},
        "missing_modality": missing,
        "skipped": {
            "invalid_names": list(invalid),
            "undecodable": [{"file": str(f.clip.path.relative_to(root)), "reason": f.reason} for f in failed],
            "songs": len(songs),
            "no_usable_modality": len(mute),
        },
        "cache": {**cache.stats.as_dict(), "dir": str(cache.directory)},
        "face_crop": {
            "enabled": settings.face_crop,
            "detector": face_detector().name if settings.face_crop else "off",
            "faces_found": sum(1 for e in video_entries if e.face_found),
            "clips_with_video": len(video_entries),
        },
    }
