"""data.enrollment: each speaker's enrollment clips, left out of scoring, giving a speaker-normalising
model its speakers' statistics (of the real emotion-av front end), never a clip's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from lexiedge.api import CLIP_STATISTICS, MODEL_INPUTS
from lexiedge.errors import UsageError
from lexiedge_emotion_av.plugin import EmotionAVPlugin
from lexiedge_emotion_av.settings import EmotionAVSettings
from lexiedge_ravdess.enrollment import NEUTRAL_EMOTIONS, choose, combine
from lexiedge_ravdess.labels import find_clips
from lexiedge_ravdess.plugin import RavdessPlugin
from lexiedge_ravdess.settings import EnrollmentSettings, SplitSettings

SPLIT = SplitSettings(train=[1, 2, 3, 4], val=[5], test=[6])


def _speaker_model():
    settings = EmotionAVSettings.model_validate(
        {
            "n_mels": 32,
            "feature_norm": "speaker",
            "audio": {"dim": 32, "layers": 1, "heads": 2, "ffn": 64},
            "visual": {
                "dim": 32,
                "temporal_depth": 1,
                "gscb_layers": 1,
                "attention_layers": 1,
                "heads": 2,
                "stem_channels": 8,
            },
            "fusion": {
                "audio_in": 32,
                "visual_in": 32,
                "hidden": 32,
                "layers": 2,
                "out": 16,
                "heads": 4,
                "kv_heads": 2,
            },
            "head": {"hidden": [16]},
        }
    )
    torch.manual_seed(0)
    return EmotionAVPlugin().build(settings, None), settings


def test_neutral_enrollment_is_each_actors_neutral_and_calm_clips_with_audio(synth_root: Path) -> None:
    clips, _ = find_clips(synth_root)
    chosen = choose(clips, EnrollmentSettings(clips="neutral"))
    assert chosen and all(c.emotion in NEUTRAL_EMOTIONS and c.has_audio for c in chosen)
    # per actor: 2 emotions x (2 audio-video + 1 audio-only) clips with audio
    assert {actor: sum(c.actor == actor for c in chosen) for actor in range(1, 7)} == dict.fromkeys(
        range(1, 7), 6
    )
    random = choose(clips, EnrollmentSettings(clips=5, seed=3))
    assert all(sum(c.actor == a for c in random) == 5 for a in range(1, 7)) and all(
        c.has_audio for c in random
    )
    assert random == choose(clips, EnrollmentSettings(clips=5, seed=3)), "seeded: the same clips again"
    assert random != choose(clips, EnrollmentSettings(clips=5, seed=4))


def test_too_few_enrollment_clips_is_one_line(synth_root: Path) -> None:
    clips, _ = find_clips(synth_root)
    with pytest.raises(
        UsageError,
        match=r"actor 01 has 24 clips with audio, 24 of them enrollment clips .* at least "
        r"one clip left to score",
    ):
        choose(clips, EnrollmentSettings(clips=30))
    voiced = [c for c in clips if c.actor == 2 and c.has_audio]
    one_neutral = [c for c in voiced if c.emotion not in NEUTRAL_EMOTIONS] + [
        c for c in voiced if c.emotion == 0
    ][:1]
    with pytest.raises(UsageError, match=r"actor 02 has 19 clips with audio, 1 of them enrollment clips"):
        choose(one_neutral, EnrollmentSettings(clips="neutral"))
    with pytest.raises(ValueError, match="at least 2 clips"):
        EnrollmentSettings(clips=1)


def test_speaker_statistics_of_the_real_front_end_reach_every_clip_but_its_own(
    synth_root: Path, tmp_path: Path, small_settings
) -> None:
    built, _ = _speaker_model()
    assert built.extras[MODEL_INPUTS][-2:] == ("speaker_mean", "speaker_std")
    settings = small_settings(split=SPLIT, modalities=["audio"], enrollment={"clips": "neutral"})
    plain = RavdessPlugin().load(
        small_settings(split=SPLIT, modalities=["audio"]),
        synth_root,
        built=built.__class__(torch.nn.Identity()),
        model_settings=None,
        cache_dir=tmp_path,
        console=Console(quiet=True),
    )
    splits = RavdessPlugin().load(
        settings,
        synth_root,
        built=built,
        model_settings=None,
        cache_dir=tmp_path,
        console=Console(quiet=True),
    )
    # validation and test score the clips that are not enrollment clips; training keeps every clip
    assert len(splits.train) == len(plain.train) == 4 * 8 * 3
    assert len(splits.val) == len(plain.val) - 6 and len(splits.test) == len(plain.test) - 6
    assert not any(c.emotion in NEUTRAL_EMOTIONS for c in splits.test.clips)
    assert splits.summary["enrollment"]["left_out_of_scoring"] == {"train": 0, "val": 6, "test": 6}

    statistics = built.extras[CLIP_STATISTICS]
    centre = small_settings(split=SPLIT, modalities=["audio"], random_crop=False)
    reader = RavdessPlugin().load(
        centre,
        synth_root,
        built=built.__class__(torch.nn.Identity()),
        model_settings=None,
        cache_dir=tmp_path,
        console=Console(quiet=True),
    )
    enrolled = [i for i, c in enumerate(reader.test.clips) if c.emotion in NEUTRAL_EMOTIONS]
    expected = combine(statistics(np.stack([reader.test[i]["waveform"].numpy() for i in enrolled])))
    item = splits.test[0]
    assert set(item) >= {"speaker_mean", "speaker_std"} and item["speaker_mean"].shape == (32,)
    assert np.allclose(item["speaker_mean"].numpy(), expected.mean, atol=1e-5)
    assert np.allclose(item["speaker_std"].numpy(), expected.std, atol=1e-5)

    train_clips = splits.train.clips
    own = next(i for i, c in enumerate(train_clips) if c.emotion == 0 and c.actor == 1)
    other = next(i for i, c in enumerate(train_clips) if c.emotion == 5 and c.actor == 1)
    first, second = splits.train[own], splits.train[other]
    assert not torch.equal(first["speaker_mean"], second["speaker_mean"]), (
        "an enrolling clip is left out of its own"
    )
    batch = splits.collate([splits.train[0], splits.train[1]])
    assert batch["speaker_mean"].shape == batch["speaker_std"].shape == (2, 32)


def test_a_speaker_normalising_model_without_enrollment_data_is_one_line(
    synth_root: Path, tmp_path: Path, small_settings
) -> None:
    built, _ = _speaker_model()
    with pytest.raises(UsageError, match="set data.enrollment.clips"):
        RavdessPlugin().load(
            small_settings(split=SPLIT),
            synth_root,
            built=built,
            model_settings=None,
            cache_dir=tmp_path,
            console=Console(quiet=True),
        )
    with pytest.raises(UsageError, match="--enroll 'one': expected neutral"):
        RavdessPlugin().enrollment_overrides("one")
    assert RavdessPlugin().enrollment_overrides("12") == {"enrollment": {"clips": 12}}
