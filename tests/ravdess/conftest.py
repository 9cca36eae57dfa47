"""Fixtures of the ravdess tests: a synthetic RAVDESS-layout set made once per session, small settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from lexiedge_ravdess.settings import RavdessSettings
from lexiedge_ravdess.synth import SynthSpec, write_synthetic_set

# 6 actors (4 train / 1 val / 1 test), 2 audio-video clips per emotion, plus one audio-only wav and one
# video-only mp4 per actor and emotion: 192 files, enough to tell emotions apart, generated in seconds.
SYNTH_SPEC = SynthSpec(actors=6, clips_per_emotion=2, seconds=1.2, seed=7, audio_only=1, video_only=1)


@pytest.fixture(scope="session")
def synth_spec() -> SynthSpec:
    return SYNTH_SPEC


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth-av")
    write_synthetic_set(root, SYNTH_SPEC)
    return root


@pytest.fixture
def console() -> Console:
    """A console whose output the test reads back with ``console.export_text()``."""
    return Console(record=True, width=300, force_terminal=False)


@pytest.fixture
def small_settings() -> Callable[..., RavdessSettings]:
    """Settings with tiny tensors (the contract's defaults otherwise); keyword overrides."""

    def make(**overrides) -> RavdessSettings:
        return RavdessSettings(**{"clip_seconds": 1.2, "frames": 4, "image_size": 32, **overrides})

    return make
