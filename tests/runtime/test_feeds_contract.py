"""preprocessing.feeds: the classifier's input contract as data (what runtime-js reads), checked at load."""

from __future__ import annotations

import copy

import pytest

from lexiedge_runtime.inputs import ClassifierSpec
from lexiedge_runtime.manifest import ManifestError

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
PREPROCESSING = {"max_input_seconds": 15.0, "max_frames": 40,
                 "data_settings": {"sample_rate": 16000, "clip_seconds": 1.5, "frames": 4, "image_size": 48,
                                   "modalities": ["audio", "video"]}}


def _manifest(with_feeds: bool = True) -> dict:
    manifest = {"labels": LABELS, "preprocessing": copy.deepcopy(PREPROCESSING)}
    if with_feeds:
        manifest["preprocessing"]["feeds"] = ClassifierSpec.from_manifest(manifest, "here").feeds()
    return manifest


def test_the_contract_states_every_fact_a_runtime_in_another_language_needs():
    feeds = _manifest()["preprocessing"]["feeds"]
    assert feeds["waveform"] == {"input": "waveform", "dtype": "float32", "layout": ["batch", "samples"],
                                 "sample_rate": 16000, "clip_samples": 24000, "range": [-1.0, 1.0],
                                 "min_seconds": 0.1, "max_seconds": 15.0}
    assert feeds["frames"]["image_size"] == 48 and feeds["frames"]["frame_count"] == 4
    assert feeds["frames"]["uint8_scale"] == pytest.approx(1 / 255, rel=1e-7)
    assert {feeds["audio_mask"]["input"], feeds["video_mask"]["input"]} == {"audio_mask", "video_mask"}
    assert feeds["outputs"] == {"probabilities": "probabilities", "logits": "logits"}
    assert feeds["range_slack"] == 1e-3 and feeds["max_input_factor"] == 10


def test_a_manifest_without_it_still_loads():
    assert ClassifierSpec.from_manifest(_manifest(with_feeds=False), "here").sample_rate == 16000


@pytest.mark.parametrize(("section", "key", "value"), [("waveform", "sample_rate", 8000), ("waveform", "input", "audio"),
                                                       ("frames", "image_size", 96), ("outputs", "probabilities", "p")])
def test_a_contract_that_disagrees_with_the_manifest_is_refused(section, key, value):
    manifest = _manifest()
    manifest["preprocessing"]["feeds"][section][key] = value
    with pytest.raises(ManifestError, match=f"preprocessing.feeds.{section}.{key}: "):
        ClassifierSpec.from_manifest(manifest, "here")


def test_another_contract_version_is_refused():
    manifest = _manifest()
    manifest["preprocessing"]["feeds"]["version"] = 2
    with pytest.raises(ManifestError, match="preprocessing.feeds.version: expected 1, got 2"):
        ClassifierSpec.from_manifest(manifest, "here")
