"""The emotion-av plugin: registration through its hook and entry point, build, example batches."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch
import torch.nn.functional as F

from lexiedge.api import NoSettings, PluginSettings
from lexiedge.errors import UsageError
from lexiedge.plugin import build_host
from lexiedge_emotion_av import plugin as plugin_module
from lexiedge_emotion_av.model import EmotionAVModel
from lexiedge_emotion_av.plugin import RAVDESS_EMOTIONS, EmotionAVPlugin


class ClipSettings(PluginSettings):
    """Data settings with the fields example_batch reads (the ravdess plugin's names)."""

    sample_rate: int = 16000
    clip_seconds: float = 0.75
    frames: int = 3
    image_size: int = 40


def test_the_hook_registers_the_plugin() -> None:
    host = build_host(plugin_module, entry_points=False)
    plugin = host.models.get("emotion-av")
    assert isinstance(plugin, EmotionAVPlugin)
    assert plugin.task == "av-classification" and plugin.description
    assert plugin.Settings.__name__ == "EmotionAVSettings"


def test_the_entry_point_names_this_module() -> None:
    points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="lexiedge")}
    if "emotion-av" not in points:
        pytest.skip("lexiedge is not installed (pip install -e . registers the entry points)")
    assert points["emotion-av"] == "lexiedge_emotion_av.plugin"


def test_build_gives_the_model_and_the_ravdess_labels(tiny_settings) -> None:
    built = EmotionAVPlugin().build(tiny_settings(), None)
    assert isinstance(built.module, EmotionAVModel)
    assert (
        built.extras["labels"]
        == list(RAVDESS_EMOTIONS)
        == [
            "neutral",
            "calm",
            "happy",
            "sad",
            "angry",
            "fearful",
            "disgust",
            "surprised",
        ]
    )
    with pytest.raises(UsageError, match="needs EmotionAVSettings"):
        EmotionAVPlugin().build(NoSettings(), None)


def test_example_batch_follows_the_data_settings_and_trains(tiny_settings) -> None:
    plugin = EmotionAVPlugin()
    settings = tiny_settings()
    built = plugin.build(settings, None)
    batch = plugin.example_batch(built, settings, ClipSettings(), batch_size=3)
    assert batch["waveform"].shape == (3, 12000) and batch["waveform"].dtype == torch.float32
    assert batch["waveform"].abs().max() <= 1.0
    assert (
        batch["frames"].shape == (3, 3, 3, 40, 40)
        and 0 <= batch["frames"].min() <= batch["frames"].max() <= 1
    )
    assert batch["audio_mask"].tolist() == batch["video_mask"].tolist() == [1.0, 1.0, 1.0]
    assert batch["label"].dtype == torch.int64 and batch["label"].max() < 8
    logits = built.module(batch["waveform"], batch["frames"], batch["audio_mask"], batch["video_mask"])
    F.cross_entropy(logits, batch["label"]).backward()
    assert all(p.grad is not None for p in built.module.parameters())


def test_example_batch_defaults_to_the_data_contract(tiny_settings) -> None:
    plugin = EmotionAVPlugin()
    settings = tiny_settings()
    built = plugin.build(settings, None)
    batch = plugin.example_batch(built, settings, NoSettings(), batch_size=1)
    assert batch["waveform"].shape == (1, 48000)  # 3.0 s at 16 kHz
    assert batch["frames"].shape == (1, 8, 3, 64, 64)
    assert set(batch) == {"waveform", "frames", "audio_mask", "video_mask", "label"}
