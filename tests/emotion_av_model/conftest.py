"""Fixtures of the emotion-av model tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from emotion_av_helpers import Inputs, build_tiny_settings, make_inputs

from lexiedge_emotion_av.model import EmotionAVModel
from lexiedge_emotion_av.settings import EmotionAVSettings


@pytest.fixture
def tiny_model() -> EmotionAVModel:
    torch.manual_seed(0)
    return EmotionAVModel(build_tiny_settings()).eval()


@pytest.fixture
def tiny_settings() -> Callable[..., EmotionAVSettings]:
    return build_tiny_settings


@pytest.fixture
def inputs() -> Callable[..., Inputs]:
    return make_inputs
