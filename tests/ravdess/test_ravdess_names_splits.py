"""RAVDESS names, settings validation, actor splits and the per-class training fraction."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from lexiedge_ravdess.labels import EMOTIONS, InvalidName, find_clips, parse_name
from lexiedge_ravdess.settings import RavdessSettings, SplitSettings
from lexiedge_ravdess.splits import assign_actors, proportional_split, sample_per_class


def speech_video_names(actors: range) -> list[Path]:
    """The names of RAVDESS's speech videos (modality 01 and 02): 120 per actor, no strong neutral."""
    names = []
    for actor, modality, emotion in itertools.product(actors, (1, 2), range(1, 9)):
        intensities = (1,) if emotion == 1 else (1, 2)
        for intensity, statement, repetition in itertools.product(intensities, (1, 2), (1, 2)):
            name = f"{modality:02d}-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.mp4"
            names.append(Path(f"Actor_{actor:02d}") / name)
    return names


def test_parse_name_reads_every_field() -> None:
    clip = parse_name(Path("Actor_12/02-02-06-02-01-02-12.mp4"))
    assert (clip.modality, clip.vocal_channel, clip.intensity, clip.statement, clip.repetition, clip.actor) == (
        2, 2, 2, 1, 2, 12,
    )
    assert clip.emotion == 5 and clip.emotion_name == "fearful" and clip.is_song
    assert clip.has_video and not clip.has_audio
    audio = parse_name(Path("03-01-08-01-01-01-03.wav"))
    assert audio.emotion_name == "surprised" and audio.has_audio and not audio.has_video
    assert parse_name(Path("01-01-01-01-01-01-01.MP4")).has_audio  # case of the suffix does not matter


def test_emotions_are_in_ravdess_order() -> None:
    assert EMOTIONS == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    assert parse_name(Path("01-01-05-01-01-01-01.mp4")).emotion == EMOTIONS.index("angry")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("clip.mp4", "expected a name like"),
        ("01-01-09-01-01-01-01.mp4", "emotion 09"),
        ("04-01-01-01-01-01-01.mp4", "modality 04"),
        ("01-03-01-01-01-01-01.mp4", "vocal channel 03"),
        ("01-01-01-03-01-01-01.mp4", "intensity 03"),
        ("01-01-01-01-01-01-00.mp4", "actor 00"),
        ("03-01-01-01-01-01-01.mp4", "modality 03 files are .wav"),
        ("01-01-01-01-01-01-01.wav", "modality 01 files are .mp4"),
        ("Actor_02/01-01-01-01-01-01-01.mp4", "file is in Actor_02/"),
    ],
)
def test_invalid_names_say_what_is_wrong(name: str, problem: str) -> None:
    with pytest.raises(InvalidName, match=problem):
        parse_name(Path(name))


def test_find_clips_searches_actor_folders_recursively_and_reports_bad_names(tmp_path: Path) -> None:
    deep = tmp_path / "Video_Speech_Actor_01" / "Actor_01"
    deep.mkdir(parents=True)
    for name in ("01-01-03-01-01-01-01.mp4", "02-01-04-02-02-01-01.mp4", "01-01-11-01-01-01-01.mp4", "notes.txt"):
        (deep / name).write_bytes(b"x")
    (deep / "._01-01-03-01-01-01-01.mp4").write_bytes(b"x")  # a macOS resource fork: not a clip, not a problem
    (tmp_path / "Actor_02").mkdir()
    (tmp_path / "Actor_02" / "03-01-02-01-01-01-02.wav").write_bytes(b"x")
    clips, problems = find_clips(tmp_path)
    assert [(c.actor, c.emotion_name, c.modality) for c in clips] == [(2, "calm", 3), (1, "happy", 1), (1, "sad", 2)]
    assert len(problems) == 1 and "01-01-11-01-01-01-01.mp4" in problems[0] and "emotion 11" in problems[0]


def test_default_split_of_24_actors_gives_the_seed_clip_counts() -> None:
    clips = [parse_name(path) for path in speech_video_names(range(1, 25))]
    assert len(clips) == 2880
    split = assign_actors({c.actor for c in clips}, None)
    assert split.train == tuple(range(1, 17)) and split.val == (17, 18, 19, 20) and split.test == (21, 22, 23, 24)
    counts = {name: sum(1 for c in clips if c.actor in split.of(name)) for name in ("train", "val", "test")}
    assert counts == {"train": 1920, "val": 480, "test": 480}


def test_half_of_the_training_clips_per_class_gives_the_rtx3050_seed() -> None:
    clips = [parse_name(path) for path in speech_video_names(range(1, 17))]
    half = sample_per_class(clips, 0.5, seed=0)
    assert len(half) == 960
    full_counts, half_counts = Counter(c.emotion for c in clips), Counter(c.emotion for c in half)
    assert {e: half_counts[e] / full_counts[e] for e in full_counts} == {e: 0.5 for e in range(8)}
    assert sample_per_class(clips, 0.5, seed=0) == half  # the same seed, the same clips
    assert sample_per_class(clips, 0.5, seed=1) != half
    assert set(half) <= set(clips)
    tiny = sample_per_class(clips, 0.001, seed=0)
    assert Counter(c.emotion for c in tiny) == {e: 1 for e in range(8)}  # never a class left empty


@pytest.mark.parametrize(
    ("actors", "expected"),
    [
        (range(1, 9), ((1, 2, 3, 4, 5, 6), (7,), (8,))),  # the real-data folder's actors 1-8
        (range(1, 7), ((1, 2, 3, 4), (5,), (6,))),  # the synthetic set's 6
        (range(1, 4), ((1,), (2,), (3,))),
        (range(1, 13), (tuple(range(1, 9)), (9, 10), (11, 12))),
        ((3, 9), ((3,), (9,), ())),
        ((5,), ((5,), (), ())),
    ],
)
def test_fewer_actors_are_split_in_proportion(actors, expected) -> None:
    split = assign_actors(actors, None)
    assert (split.train, split.val, split.test) == expected
    assert assign_actors(actors, None) == split  # deterministic
    every = split.train + split.val + split.test
    assert sorted(every) == sorted(actors) and len(set(every)) == len(every)  # each actor in exactly one split


def test_proportional_split_of_24_actors_is_the_default_split() -> None:
    assert proportional_split(range(1, 25)) == assign_actors(range(1, 25), None)


def test_the_default_split_is_kept_when_every_split_has_actors() -> None:
    split = assign_actors([1, 2, 3, 17, 22], None)
    assert (split.train, split.val, split.test) == ((1, 2, 3), (17,), (22,))


def test_custom_split_lists_are_used_as_given() -> None:
    custom = SplitSettings(train=[2, 4, 6], val=[1], test=[3])
    split = assign_actors(range(1, 8), custom)
    assert (split.train, split.val, split.test, split.unassigned) == ((2, 4, 6), (1,), (3,), (5, 7))


def test_settings_defaults_match_the_contract() -> None:
    settings = RavdessSettings()
    assert (settings.sample_rate, settings.clip_seconds, settings.frames, settings.image_size) == (16000, 3.0, 8, 64)
    assert settings.modalities == ["audio", "video"] and settings.data_fraction == 1.0 and settings.seed == 0
    assert settings.split is None and settings.include_song is False and settings.face_crop is True
    assert settings.num_samples == 48000


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"data_fraction": 0.0}, "data_fraction"),
        ({"data_fraction": 1.5}, "data_fraction"),
        ({"modalities": []}, "modalities"),
        ({"modalities": ["audio", "audio"]}, "listed twice"),
        ({"modalities": ["text"]}, "modalities"),
        ({"split": {"train": [1, 2], "val": [2], "test": [3]}}, r"actors \[2\] are in both train and val"),
        ({"split": {"train": [1], "val": [3], "test": [3]}}, "both val and test"),
        ({"split": {"train": []}}, "train"),
        ({"frames": 0}, "frames"),
        ({"sampel_rate": 16000}, "sampel_rate"),
    ],
)
def test_bad_settings_are_rejected_with_the_field_named(values: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        RavdessSettings.model_validate(values)
