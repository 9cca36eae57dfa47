"""The refusals of tests/faults on the real emotion-av and Qwen artifacts: the real exporter's manifests
pass the runtime's validation and carry the input limit, and the real generator refuses blank prompts,
unknown roles and text that is not UTF-8 before generating anything."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lexiedge.runtime import InputShapeError, InputValueError, load
from lexiedge.runtime.inputs import MAX_INPUT_FACTOR


def test_the_emotion_av_manifest_bounds_its_input_and_long_audio_is_refused(av_artifacts):
    manifest = json.loads((av_artifacts["onnx"] / "manifest.json").read_text())
    data = manifest["preprocessing"]["data_settings"]
    assert manifest["preprocessing"]["max_input_seconds"] == pytest.approx(data["clip_seconds"] * MAX_INPUT_FACTOR)
    assert manifest["preprocessing"]["max_frames"] == data["frames"] * MAX_INPUT_FACTOR
    model = load(av_artifacts["onnx"], "cpu")
    with pytest.raises(InputShapeError, match="600.0 s long; this model takes at most"):
        model.predict(waveform=np.zeros(600 * 16000, np.float32))


@pytest.mark.parametrize(("prompt", "words"), [
    ("  \n", "the prompt is only whitespace"),
    ([{"role": "user", "content": ""}], r"message 0 \(user\) is empty"),
    ([{"role": "tool", "content": "Correct: she go."}], "message 0 has role 'tool'"),
    ("Correct: she go\udcff.", "not valid UTF-8 text"),
])
def test_the_generator_refuses_what_it_cannot_answer(lm_artifacts, prompt, words):
    generator = load(lm_artifacts["onnx"], "cpu")
    with pytest.raises(InputValueError, match=words):
        generator.generate(prompt, max_new_tokens=2)
    with pytest.raises(InputValueError, match=words):
        list(generator.generate(prompt, max_new_tokens=2, stream=True))
    assert generator.generate("Correct: she go.", max_new_tokens=2).prompt_tokens > 0, "and it goes on working"
