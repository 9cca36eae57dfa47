"""Speaker enrollment in runtime-js against the Python runtime: `node --test test/enrollment.test.js`
from here.

The suite's speaker-normalised model (tests/conftest.py: ``enrollment_run``) enrolls a real RAVDESS speaker
(actor 09's neutral and calm wavs, 16 kHz as stored: no resampling on either side) in the Python runtime;
the expectations (its profile, its probabilities for three other wavs of that actor with and without the
profile, its messages for bad input) go to a JSON file, and the Node tests must agree with all of it, in
onnxruntime-node and in onnxruntime-web's WASM build.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
from test_runtime_js import RUNTIME_JS, node_or_skip

from lexiedge_runtime import RuntimeInputError, SpeakerProfile, load
from lexiedge_runtime.artifact import read_manifest

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]
ACTOR = "ravdess-speech/Actor_09"


def _refusal(name: str, artifact: str, call) -> dict:
    with pytest.raises(RuntimeInputError) as refused:
        call()
    return {
        "name": name,
        "artifact": artifact,
        "error": type(refused.value).__name__,
        "message": str(refused.value),
    }


def test_runtime_js_enrolls_a_speaker_as_the_python_runtime_does(
    enrollment_run, small_av_artifact, shared_data, tmp_path, record_property
):
    node = node_or_skip()
    model = load(enrollment_run.onnx, "cpu", threads=1)
    plain = load(small_av_artifact, "cpu", threads=1)
    wavs = sorted((shared_data / ACTOR).glob("*.wav"))
    enroll = [w for w in wavs if w.name.split("-")[2] in ("01", "02")]  # neutral and calm: 12 clips
    probes = [w for w in wavs if w.name.split("-")[2] in ("03", "05", "07")][::8]  # one happy, angry, disgust
    assert len(enroll) == 12 and len(probes) == 3
    profile = model.calibrate(enroll)
    tone = (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    other = {
        **profile.to_json(),
        "graph_sha256": read_manifest(small_av_artifact)["files"]["model.onnx"]["sha256"],
    }
    errors = [
        _refusal("one clip", "enrollment", lambda: model.calibrate([tone])),
        _refusal("one waveform, not a list", "enrollment", lambda: model.calibrate(tone)),
        _refusal("out of range", "enrollment", lambda: model.calibrate([tone, tone * 30])),
        _refusal(
            "int16 PCM",
            "enrollment",
            lambda: model.calibrate([tone, np.round(tone * 32767).astype(np.int16)]),
        ),
        _refusal("a model without enrollment: calibrate", "plain", lambda: plain.calibrate([tone, tone])),
        _refusal(
            "a model without enrollment: speaker",
            "plain",
            lambda: plain.predict(tone, speaker=model.calibrate([tone, tone])),
        ),
        _refusal(
            "a profile of another model",
            "enrollment",
            lambda: model.predict(tone, speaker=SpeakerProfile.from_json(other)),
        ),
        _refusal(
            "a profile of another version",
            "enrollment",
            lambda: SpeakerProfile.from_json({**profile.to_json(), "version": 2}),
        ),
    ]
    expectations = {
        "artifacts": {"enrollment": str(enrollment_run.onnx), "plain": str(small_av_artifact)},
        "enroll": [str(w) for w in enroll],
        "profile": profile.to_json(),
        "other_profile": other,
        "probes": [
            {
                "wav": str(w),
                "speaker": list(model.predict_file(w, speaker=profile).probabilities.values()),
                "global": list(model.predict_file(w).probabilities.values()),
            }
            for w in probes
        ],
        "errors": errors,
    }
    (tmp_path / "expectations.json").write_text(json.dumps(expectations))
    results = tmp_path / "results.json"
    env = {
        **os.environ,
        "LEXIEDGE_JS_ENROLLMENT": str(tmp_path / "expectations.json"),
        "LEXIEDGE_JS_ENROLLMENT_RESULTS": str(results),
    }
    done = subprocess.run(
        [node, "--test", "--test-reporter=spec", "--test-concurrency=1", "test/enrollment.test.js"],
        cwd=RUNTIME_JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"node --test failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert "skipped 0" in done.stdout, f"a Node test was skipped:\n{done.stdout[-3000:]}"
    measured = json.loads(results.read_text())
    line = (
        f"profile relative delta mean {measured['profile_mean_delta']:.1e} std "
        f"{measured['profile_std_delta']:.1e}; "
        f"probabilities max |delta| {max(max(p['speaker'], p['global']) for p in measured['probes']):.1e}; "
        f"onnxruntime-web {measured['web_speaker_delta']:.1e}"
    )
    print(line)
    record_property("runtime-js enrollment", line)
    assert len(measured["probes"]) == len(probes)
