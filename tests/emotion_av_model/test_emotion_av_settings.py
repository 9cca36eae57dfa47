"""EmotionAVSettings: the seed columns validate, inconsistent sizes fail with a message naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from lexiedge_emotion_av.settings import EmotionAVSettings

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def test_defaults_are_the_small_seed_column() -> None:
    settings = EmotionAVSettings()
    assert (settings.audio.dim, settings.audio.layers, settings.audio.heads, settings.audio.ffn) == (
        128,
        4,
        4,
        512,
    )
    assert (
        settings.fusion.audio_in,
        settings.fusion.hidden,
        settings.fusion.layers,
        settings.fusion.out,
    ) == (
        128,
        256,
        2,
        128,
    )
    assert settings.head.hidden == [128, 64]
    assert (settings.sample_rate, settings.n_fft, settings.hop_length, settings.n_mels) == (
        16000,
        400,
        160,
        64,
    )


@pytest.mark.parametrize("profile", ["cpu", "rtx3050-4gb", "t4-16gb"])
def test_shipped_profiles_validate(profile: str) -> None:
    path = PROFILES / f"{profile}.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    section = dict(yaml.safe_load(path.read_text())["models"]["emotion-av"]["model"])
    assert section.pop("plugin") == "emotion-av"
    settings = EmotionAVSettings.model_validate(section)
    assert settings.fusion.audio_in == settings.audio.dim


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"audio": {"dim": 100, "heads": 3}}, "audio.dim (100) must be divisible by audio.heads (3)"),
        ({"visual": {"dim": 96, "heads": 32}}, "visual.dim / visual.heads = 3 must be even"),
        ({"fusion": {"heads": 4, "kv_heads": 3}}, "fusion.kv_heads (3) must divide fusion.heads (4)"),
        ({"fusion": {"conv_kernel": 4}}, "fusion.conv_kernel (4) must be odd"),
        ({"audio": {"conv_kernel": 14}}, "audio.conv_kernel (14) must be odd"),
        ({"audio": {"dim": 64, "heads": 4}}, "fusion.audio_in (128) must equal audio.dim (64)"),
        ({"visual": {"dim": 64, "heads": 4}}, "fusion.visual_in (128) must equal visual.dim (64)"),
        ({"hop_length": 500}, "hop_length (500) must be <= n_fft (400)"),
        ({"n_mels": 300}, "n_mels (300) must be <= n_fft // 2 + 1"),
        ({"audio": {"subsampling": 3}}, "subsampling"),
        ({"head": {"hidden": [64, 0]}}, "head.hidden widths must be >= 1"),
        ({"features": "mfcc_chroma", "n_mels": 32, "n_mfcc": 40}, "n_mfcc (40) must be <= n_mels (32)"),
    ],
)
def test_inconsistent_sizes_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        EmotionAVSettings.model_validate(change)


@pytest.mark.parametrize("section", [{"audio": {"dims": 128}}, {"fusion": {"kv_head": 2}}, {"n_mel": 40}])
def test_unknown_keys_fail_in_every_section(section: dict) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        EmotionAVSettings.model_validate(section)
