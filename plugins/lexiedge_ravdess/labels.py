"""RAVDESS file names: the eight emotions and the seven-part name every clip carries.

A RAVDESS clip is named ``MM-VV-EE-II-SS-RR-AA.(mp4|wav)``: modality (01 audio-video, 02 video-only,
03 audio-only), vocal channel (01 speech, 02 song), emotion (01..08), intensity (01 normal, 02 strong),
statement (01, 02), repetition (01, 02) and actor (01..24). The distribution puts each actor's clips in
``Actor_NN/``; archives nest those folders one level deeper, so the data root is searched recursively.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# RAVDESS order: emotion code EE is the index + 1. Trainers, exporters and the runtime share this list.
EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

AUDIO_VIDEO = 1
VIDEO_ONLY = 2
AUDIO_ONLY = 3
SPEECH = 1
SONG = 2

MEDIA_SUFFIXES = (".mp4", ".wav")
_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\.(mp4|wav)$", re.IGNORECASE)
_ACTOR_DIR = re.compile(r"^Actor_(\d{2})$", re.IGNORECASE)
# The suffix a modality's files carry in the distribution; anything else is a mislabelled file.
_SUFFIX_OF_MODALITY = {AUDIO_VIDEO: ".mp4", VIDEO_ONLY: ".mp4", AUDIO_ONLY: ".wav"}


class InvalidName(ValueError):
    """A media file whose name is not a valid RAVDESS name; the message says which part is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path.name}: {problem}")


@dataclass(frozen=True, order=True)
class ClipName:
    """One RAVDESS clip: where it is and what its name says. ``emotion`` is the 0-based label index."""

    path: Path
    modality: int
    vocal_channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    @property
    def has_audio(self) -> bool:
        return self.modality in (AUDIO_VIDEO, AUDIO_ONLY)

    @property
    def has_video(self) -> bool:
        return self.modality in (AUDIO_VIDEO, VIDEO_ONLY)

    @property
    def is_song(self) -> bool:
        return self.vocal_channel == SONG

    @property
    def emotion_name(self) -> str:
        return EMOTIONS[self.emotion]


def parse_name(path: Path) -> ClipName:
    """Parse ``MM-VV-EE-II-SS-RR-AA.(mp4|wav)``; raise :class:`InvalidName` saying what was expected."""
    match = _NAME.match(path.name)
    if match is None:
        raise InvalidName(path, "expected a name like 01-01-03-01-02-01-12.mp4 (MM-VV-EE-II-SS-RR-AA.mp4|wav)")
    modality, channel, emotion, intensity, statement, repetition, actor = (int(part) for part in match.groups()[:7])
    suffix = "." + match.group(8).lower()
    checks = (
        (modality in _SUFFIX_OF_MODALITY, f"modality {modality:02d} is not 01 (audio-video), 02 (video-only) or 03 (audio-only)"),
        (channel in (SPEECH, SONG), f"vocal channel {channel:02d} is not 01 (speech) or 02 (song)"),
        (1 <= emotion <= len(EMOTIONS), f"emotion {emotion:02d} is not 01..08"),
        (intensity in (1, 2), f"intensity {intensity:02d} is not 01 or 02"),
        (statement in (1, 2), f"statement {statement:02d} is not 01 or 02"),
        (repetition in (1, 2), f"repetition {repetition:02d} is not 01 or 02"),
        (actor >= 1, "actor 00 does not exist (actors are numbered from 01)"),
    )
    for ok, problem in checks:
        if not ok:
            raise InvalidName(path, problem)
    if _SUFFIX_OF_MODALITY[modality] != suffix:
        expected = _SUFFIX_OF_MODALITY[modality]
        raise InvalidName(path, f"modality {modality:02d} files are {expected} files, not {suffix}")
    folder_actor = _actor_of_folder(path)
    if folder_actor is not None and folder_actor != actor:
        raise InvalidName(path, f"actor {actor:02d} in the name but the file is in Actor_{folder_actor:02d}/")
    return ClipName(path, modality, channel, emotion - 1, intensity, statement, repetition, actor)


def _actor_of_folder(path: Path) -> int | None:
    match = _ACTOR_DIR.match(path.parent.name)
    return int(match.group(1)) if match else None


def _media_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        # Hidden files are macOS resource forks (._x.mp4) or our own half-written temp files.
        if path.name.startswith(".") or path.suffix.lower() not in MEDIA_SUFFIXES or not path.is_file():
            continue
        yield path


def find_clips(root: Path) -> tuple[list[ClipName], list[str]]:
    """Every RAVDESS clip under ``root`` (sorted by path), and one problem line per invalid media file."""
    clips: list[ClipName] = []
    problems: list[str] = []
    for path in sorted(_media_files(root)):
        try:
            clips.append(parse_name(path))
        except InvalidName as exc:
            problems.append(f"{path.relative_to(root)}: {exc.problem}")
    return clips, problems
