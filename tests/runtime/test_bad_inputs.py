"""Bad classifier input: a typed error that says what was expected, and the model goes on working."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lexiedge.errors import LexiedgeError
from lexiedge.runtime import (
    Classifier,
    InputDtypeError,
    InputShapeError,
    InputValueError,
    RuntimeInputError,
    load,
)


@pytest.fixture(scope="module")
def classifier(av_artifacts: dict[str, Path]) -> Classifier:
    return load(av_artifacts["onnx"], "cpu")


@pytest.fixture(scope="module")
def good(test_clips) -> dict[str, np.ndarray]:
    return {"waveform": test_clips[0].arrays["waveform"], "frames": test_clips[0].arrays["frames"]}


def _nan_waveform(w: np.ndarray) -> np.ndarray:
    bad = w.copy()
    bad[100] = np.nan
    return bad


CASES = [
    # (name, make the arguments from a good clip and the spec, error type, words the message must hold)
    ("int16 waveform", lambda g, s: {"waveform": (g["waveform"] * 32767).astype(np.int16)}, InputDtypeError,
     ["int16", "float32", "1/32768"]),
    ("string waveform", lambda g, s: {"waveform": "hello"}, InputDtypeError, ["dtype", "numeric"]),
    ("ragged list", lambda g, s: {"waveform": [[0.0, 0.1], [0.2]]}, InputDtypeError, ["not an array"]),
    ("complex waveform", lambda g, s: {"waveform": g["waveform"].astype(np.complex64)}, InputDtypeError, ["complex64"]),
    ("rank-3 waveform", lambda g, s: {"waveform": g["waveform"][None, None]}, InputShapeError,
     ["(1, 1, {samples})", "(samples,)", "(batch, samples)"]),
    ("empty waveform", lambda g, s: {"waveform": np.zeros(0, np.float32)}, InputValueError, ["empty", "0 samples"]),
    ("empty batch", lambda g, s: {"waveform": np.zeros((0, 16000), np.float32)}, InputValueError, ["batch size 0"]),
    ("stereo as batch", lambda g, s: {"waveform": np.zeros((24000, 2), np.float32)}, InputShapeError,
     ["2 samples", "stereo", "mono"]),
    ("NaN waveform", lambda g, s: {"waveform": _nan_waveform(g["waveform"])}, InputValueError, ["NaN"]),
    ("int16-scaled floats", lambda g, s: {"waveform": g["waveform"] * 32767}, InputValueError, ["[-1, 1]", "max |x|"]),
    ("bad sample rate", lambda g, s: {"waveform": g["waveform"], "sample_rate": 0}, InputValueError, ["sample_rate"]),
    ("float sample rate", lambda g, s: {"waveform": g["waveform"], "sample_rate": 16000.5}, InputValueError,
     ["sample_rate"]),
    ("frames too big", lambda g, s: {"frames": np.zeros((4, 3, s.image_size + 16, s.image_size + 16), np.uint8)},
     InputShapeError,
     ["{big}x{big}", "{size}x{size}", "image_size"]),
    ("channels last", lambda g, s: {"frames": np.ascontiguousarray(g["frames"].transpose(0, 2, 3, 1))}, InputShapeError,
     ["channels-last", "(frames, 3, {size}, {size})"]),
    ("rank-3 frames", lambda g, s: {"frames": g["frames"][0]}, InputShapeError,
     ["(3, {size}, {size})", "(frames, 3, {size}, {size})"]),
    ("no frames", lambda g, s: {"frames": g["frames"][:0]}, InputValueError, ["0 frames"]),
    ("int32 frames", lambda g, s: {"frames": g["frames"].astype(np.int32)}, InputDtypeError, ["int32", "uint8"]),
    ("0-255 floats", lambda g, s: {"frames": g["frames"].astype(np.float32)}, InputValueError, ["[0, 1]", "255"]),
    ("inf frames", lambda g, s: {"frames": np.full((4, 3, s.image_size, s.image_size), np.inf, np.float32)},
     InputValueError, ["infinite"]),
    ("batch sizes differ", lambda g, s: {"waveform": np.stack([g["waveform"]] * 2), "frames": np.stack([g["frames"]] * 3)},
     InputShapeError, ["2 clips", "3", "batch sizes must match"]),
    ("one clip and a batch", lambda g, s: {"waveform": g["waveform"], "frames": g["frames"][None]}, InputShapeError,
     ["one clip", "a batch"]),
    ("nothing", lambda g, s: {}, InputValueError, ["nothing to classify"]),
]


@pytest.mark.parametrize(("name", "make", "error", "words"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_raises_a_typed_error_naming_what_was_expected(classifier, good, name, make, error, words):
    with pytest.raises(error) as caught:
        classifier.predict(**make(good, classifier.spec))
    assert isinstance(caught.value, RuntimeInputError) and isinstance(caught.value, LexiedgeError)
    message = str(caught.value)
    assert "\n" not in message
    spec = classifier.spec
    for word in words:
        word = word.format(samples=spec.clip_samples, size=spec.image_size, big=spec.image_size + 16)
        assert word in message, f"{name}: {word!r} not in {message!r}"


def test_the_model_is_unharmed_after_every_bad_input(classifier, good):
    before = classifier.predict(**good)
    for _, make, _, _ in CASES:
        with pytest.raises(RuntimeInputError):
            classifier.predict(**make(good, classifier.spec))
    after = classifier.predict(**good)
    assert after.probabilities == before.probabilities
