"""Real artifacts for the runtime tests, built once per session through the commands a user types.

emotion-av: `lexiedge data synth-av` (real mp4 files) -> `lexiedge train --profile cpu` (as
shipped: it beats chance well on the held-out actor) -> `lexiedge export` onnx, onnx-int8 and
ort-mobile.
qwen-lora: `lexiedge train --profile cpu` (the tiny tutor Qwen2, one short epoch) -> `lexiedge merge`
-> `lexiedge export` onnx and onnx-int4. Verification settings are trimmed (fewer prompts/tokens,
no decode-speed benchmark): the export tests own those checks; these tests own the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cli_runner import lexiedge_ok

# The cpu profile as shipped (40 epochs, no SpecAugment, ~2-3 CPU-minutes): bench/bench_learning_sweep.py gave
# the held-out actor's 32 clips test UAR 0.91, 0.81, 0.78 (seeds 0-2, 1 thread) and 0.88, 0.59, 0.78 (2 threads)
# against the floor of 0.375 asserted here (with SpecAugment the worst cell was 0.50; with half the epochs
# one cell fell to 0.41).
AV_TRAIN: list[str] = []
AV_EXPORT = {
    "onnx": [],
    "onnx-int8": [],
    "ort-mobile": [],  # the .ort flatbuffer format: the runtime loads it like a .onnx graph
}
LM_TRAIN = [  # one short epoch: the runtime needs a real merged model, not a good one
    "--set", "models.qwen-lora.train.epochs=1",
    "--set", "models.qwen-lora.train.max_steps=12",
]
_LM_VERIFY = ["prompts=2", "new_tokens=8"]
LM_EXPORT = {
    "onnx": [f"models.qwen-lora.export.options.onnx.{o}" for o in _LM_VERIFY],
    "onnx-int4": [f"models.qwen-lora.export.options.onnx-int4.{o}" for o in (*_LM_VERIFY, "benchmark_tokens=0")],
}
TEST_ACTOR = 6  # synth-av with 6 actors: actors 1-4 train, 5 validation, 6 test
# 4 clips per actor and emotion: the held-out actor has 32 clips, so one clip moves accuracy by 0.03,
# not 0.06, and the learning floor is not decided by a single near-tie on whichever CPU runs the suite.
SYNTH_CLIPS_PER_EMOTION = 4


@pytest.fixture(scope="session")
def runtime_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime")


@pytest.fixture(scope="session")
def synth_data(runtime_root: Path) -> Path:
    out = runtime_root / "synth"
    lexiedge_ok("data", "synth-av", "--out", str(out), "--actors", "6",
              "--clips-per-emotion", str(SYNTH_CLIPS_PER_EMOTION))
    return out


@pytest.fixture(scope="session")
def av_artifacts(runtime_root: Path, synth_data: Path) -> dict[str, Path]:
    run = runtime_root / "run-av"
    lexiedge_ok("train", "--profile", "cpu", "--model", "emotion-av", "--data", str(synth_data), "--out", str(run),
              *AV_TRAIN)
    artifacts = {}
    for target, extra in AV_EXPORT.items():
        artifacts[target] = runtime_root / f"emotion-av-{target}"
        lexiedge_ok("export", "--run", str(run), "--target", target, "--out", str(artifacts[target]), *extra)
    return artifacts


@pytest.fixture(scope="session")
def lm_run(runtime_root: Path) -> Path:
    run = runtime_root / "run-lm"
    lexiedge_ok("train", "--profile", "cpu", "--model", "qwen-lora", "--out", str(run), *LM_TRAIN)
    lexiedge_ok("merge", str(run))
    return run


@pytest.fixture(scope="session")
def lm_artifacts(runtime_root: Path, lm_run: Path) -> dict[str, Path]:
    artifacts = {}
    for target, overrides in LM_EXPORT.items():
        artifacts[target] = runtime_root / f"qwen-lora-{target}"
        sets = [item for override in overrides for item in ("--set", override)]
        lexiedge_ok("export", "--run", str(lm_run), "--target", target, "--out", str(artifacts[target]), *sets)
    return artifacts


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    arrays: dict[str, np.ndarray]  # what the data plugin decodes for inference: waveform, frames, sample_rate


@pytest.fixture(scope="session")
def test_clips(av_artifacts: dict[str, Path], synth_data: Path) -> list[Clip]:
    """The held-out actor's clips, decoded by the artifact's data plugin exactly as `lexiedge infer` does."""
    from lexiedge_ravdess.labels import EMOTIONS, find_clips

    from lexiedge.plugin import get_host
    from lexiedge.runtime import read_manifest

    manifest = read_manifest(av_artifacts["onnx"])
    plugin = get_host().datasets.get(manifest["preprocessing"]["data_plugin"])
    settings = manifest["preprocessing"]["data_settings"]
    clips, _ = find_clips(synth_data)
    chosen = sorted((c for c in clips if c.actor == TEST_ACTOR), key=lambda c: c.path.name)
    assert len(chosen) == 8 * SYNTH_CLIPS_PER_EMOTION, "the held-out actor has every emotion's clips"
    return [Clip(c.path, EMOTIONS[c.emotion], plugin.decode_for_inference(settings, c.path)) for c in chosen]
