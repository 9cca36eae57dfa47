"""runtime-js (the JavaScript runtime) against the Python runtime: `node --test runtime-js/test/` driven from here.

This test builds the expectations from the Python runtime (the suite's small fp32 and int8 emotion
artifacts, real RAVDESS wavs, bad inputs, an artifact with one flipped byte), writes them to a JSON file
and runs the Node tests with LEXIEDGE_JS_EXPECTATIONS pointing at it; they must all pass. Skipped with
the reason when node or runtime-js/node_modules (`npm ci --ignore-scripts` in runtime-js) is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
from lexiedge_runtime import load
from lexiedge_runtime.errors import ArtifactIntegrityError, RuntimeInputError
from lexiedge_runtime.inputs import resample_fft
from lexiedge_runtime.media.decode import centre_fit

REPO = Path(__file__).resolve().parents[2]
RUNTIME_JS = REPO / "runtime-js"
WAV_16K = Path("ravdess-speech/Actor_09/03-01-05-01-01-01-09.wav")  # 16 kHz mono: no resampling on either side
WAV_48K = Path("ravdess-speech/Actor_01/03-01-02-01-01-02-01.wav")  # 48 kHz stereo, as distributed
FP32_MAX_DELTA = 1e-4

# bad inputs, described so that both sides build the same arrays (runtime-js/test/artifact.test.js: buildInput)
BAD_INPUTS = {
    "int16 PCM": {"dtype": "int16"},
    "out of range": {"fill": 2.0},
    "out of range float64": {"dtype": "float64", "fill": 1.5},
    "NaN": {"nan_at": 5},
    "too short": {"length": 100},
    "too long": {"length": "max+1s"},
    "sample rate 0": {"sample_rate": 0},
    "empty": {"length": 0},
    "nothing": {"waveform": False},
}


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Node.js >= 18 runs runtime-js's tests)")
    if not (RUNTIME_JS / "node_modules" / "onnxruntime-node").is_dir():
        pytest.skip("runtime-js/node_modules is absent: run `npm ci --ignore-scripts` in runtime-js (.ci/run does)")
    return node


def _bad_input(spec: dict, max_seconds: float) -> dict:
    length = spec.get("length", 16000)
    rate = spec.get("sample_rate", 16000)
    if length == "max+1s":
        spec["length"] = length = int((max_seconds + 1) * 16000)
    if not spec.get("waveform", True):
        return {"sample_rate": rate}
    dtype = np.dtype(spec.get("dtype", "float32"))
    array = np.full(length, spec.get("fill", 0.1) if dtype.kind == "f" else 1, dtype)
    if spec.get("nan_at") is not None:
        array[spec["nan_at"]] = np.nan
    return {"waveform": array, "sample_rate": rate}


def _fft_path(classifier, wav: Path) -> np.ndarray:
    """predict_file's audio with the Python runtime's FFT resampler (resample_fft) in place of swresample."""
    samples, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    mono = samples.T.mean(axis=0, dtype=np.float32)
    target, media = classifier.spec.sample_rate, classifier.media
    mono = np.clip(resample_fft(mono[np.newaxis], rate, target)[0], -1.0, 1.0)
    mono = centre_fit(mono, round(media.options.clip_seconds * target), pad=False)
    return centre_fit(mono, media.clip_samples)


def test_runtime_js_matches_the_python_runtime(small_av_artifact, small_av_int8_artifact, shared_data, tmp_path,
                                               record_property):
    node = node_or_skip()
    artifacts = {"fp32": small_av_artifact, "int8": small_av_int8_artifact}
    models = {key: load(path, "cpu", threads=1) for key, path in artifacts.items()}
    cases = []
    for key, model in models.items():
        wav = shared_data / WAV_16K
        result = model.predict_file(wav)
        cases.append({"name": f"16 kHz wav {WAV_16K.name}", "artifact": key, "wav": str(wav),
                      "probabilities": list(result.probabilities.values()), "label": result.label,
                      "max_abs_delta": FP32_MAX_DELTA if key == "fp32" else None, "same_top1": True})
    fp32 = models["fp32"]
    wav48 = shared_data / WAV_48K
    swr = fp32.predict_file(wav48)  # FFmpeg's swresample: not reproduced in JavaScript, measured only
    cases.append({"name": f"48 kHz stereo wav vs predict_file (swresample) {WAV_48K.name}", "artifact": "fp32",
                  "wav": str(wav48), "probabilities": list(swr.probabilities.values()), "label": swr.label,
                  "max_abs_delta": None, "same_top1": False})
    fft = fp32.predict(_fft_path(fp32, wav48), sample_rate=fp32.spec.sample_rate)
    cases.append({"name": f"48 kHz stereo wav vs the runtime's FFT resampler {WAV_48K.name}", "artifact": "fp32",
                  "wav": str(wav48), "probabilities": list(fft.probabilities.values()), "label": fft.label,
                  "max_abs_delta": FP32_MAX_DELTA, "same_top1": True})

    errors = []
    for name, spec in BAD_INPUTS.items():
        spec = dict(spec)
        with pytest.raises(RuntimeInputError) as refused:
            fp32.predict(**_bad_input(spec, fp32.spec.max_input_seconds))
        errors.append({"name": name, "input": spec, "error": type(refused.value).__name__,
                       "message": str(refused.value)})

    copy = tmp_path / "flipped"
    shutil.copytree(small_av_artifact, copy)
    graph = copy / "model.onnx"
    data = bytearray(graph.read_bytes())
    offset = len(data) // 2
    data[offset] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError) as refused:
        load(copy, "cpu")
    flipped = {"file": "model.onnx", "offset": offset, "where": "{copy}",
               "message": str(refused.value).replace(str(copy), "{copy}")}

    rng = np.random.default_rng(14)
    signal = (rng.uniform(-0.5, 0.5, 1999)).astype(np.float32)
    expectations = {
        "artifacts": {key: str(path) for key, path in artifacts.items()},
        "cases": cases, "errors": errors, "flipped": flipped,
        "resample": {"input": signal.tolist(), "rate": 44100, "target": 16000,
                     "output": resample_fft(signal[np.newaxis], 44100, 16000)[0].tolist()},
    }
    (tmp_path / "expectations.json").write_text(json.dumps(expectations))
    results = tmp_path / "results.json"
    env = {**os.environ, "LEXIEDGE_JS_EXPECTATIONS": str(tmp_path / "expectations.json"),
           "LEXIEDGE_JS_RESULTS": str(results)}
    # every Node test but enrollment.test.js, which tests/js/test_runtime_js_enrollment.py runs with its own
    # expectations (here it would only be skipped)
    files = sorted(str(path.relative_to(RUNTIME_JS)) for path in (RUNTIME_JS / "test").glob("*.test.js")
                   if path.name != "enrollment.test.js")
    done = subprocess.run([node, "--test", "--test-reporter=spec", "--test-concurrency=1", *files],
                          cwd=RUNTIME_JS, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"node --test failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    measured = json.loads(results.read_text())
    for case in measured["cases"]:
        line = (f"{case['artifact']} {case['name']}: max |delta| {case['max_abs_delta']:.2e}, "
                f"top-1 {'same' if case['same_top1'] else 'DIFFERENT'} ({case['label']} / Python {case['python_label']})")
        print(line)
        record_property(f"{case['artifact']} {case['name']}", line)
    assert len(measured["cases"]) == 2 * len(cases)  # onnxruntime-node and onnxruntime-web (WASM)
    assert "skipped 0" in done.stdout, f"a Node test was skipped:\n{done.stdout[-3000:]}"
