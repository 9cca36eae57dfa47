"""A speaker-normalised emotion-av model (feature_norm: speaker) exported: the graph keeps the task's
four required inputs, its speaker_mean / speaker_std inputs default to the global training statistics,
and a profile computed from its feature_stats output, as the manifest's ``enrollment`` says, gives
PyTorch's logits.

Through the commands a user types: `lexiedge data synth-av`, `lexiedge train` (ResLSTM on MFCC + chroma,
a few steps), `lexiedge export` to fp32 ONNX and int8.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file

from lexiedge.plugin import get_host
from lexiedge.rundir import find_checkpoint, load_run_profile

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def artifacts(enrollment_run, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The suite's speaker-normalised run (tests/conftest.py: ENROLLMENT_RECIPE), its fp32 and int8
    exports."""
    from cli_runner import lexiedge_ok_in_a_new_process

    int8 = tmp_path_factory.mktemp("enrollment") / "onnx-int8"
    lexiedge_ok_in_a_new_process("export", "--run", enrollment_run.run, "--target", "onnx-int8", "--out", int8)
    return enrollment_run.run, {"onnx": enrollment_run.onnx, "onnx-int8": int8}


def _model(run: Path):
    profile, key = load_run_profile(run)
    entry = profile.model(key)
    built = get_host().models.get("emotion-av").build(entry.model.settings, profile.device)
    built.module.load_state_dict(load_file(find_checkpoint(run) / "model.safetensors"))
    return built.module.eval()


def _clips(count: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Voiced-like test signals: harmonic tones with noise, one speaker's pitch."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return np.stack(
        [
            sum(np.sin(2 * np.pi * k * (140 + 5 * i) * t) / k for k in range(1, 6)) * 0.2
            + rng.normal(0, 0.01, t.size)
            for i in range(count)
        ]
    ).astype(np.float32)


def test_the_graph_takes_four_inputs_and_defaults_the_profile_to_the_global_statistics(artifacts) -> None:
    run, exported = artifacts
    for target, folder in exported.items():
        manifest = json.loads((folder / "manifest.json").read_text())
        enrollment = manifest["enrollment"]
        assert enrollment["statistics_output"] == "feature_stats" and enrollment["features"] == 46
        assert enrollment["profile_inputs"] == {"mean": "speaker_mean", "std": "speaker_std"}
        session = ort.InferenceSession(
            str(folder / manifest["runtime"]["graph"]), providers=["CPUExecutionProvider"]
        )
        assert [i.name for i in session.get_inputs()] == ["waveform", "frames", "audio_mask", "video_mask"], (
            target
        )
        assert {o.name for o in session.get_outputs()} >= {"logits", "probabilities", "feature_stats"}
        assert sorted(i.name for i in session.get_overridable_initializers()) == [
            "speaker_mean",
            "speaker_std",
        ]
        assert manifest["verification"]["passed"], target


def test_a_profile_from_the_graphs_feature_stats_gives_pytorchs_logits(artifacts) -> None:
    run, exported = artifacts
    model = _model(run)
    manifest = json.loads((exported["onnx"] / "manifest.json").read_text())
    enrollment = manifest["enrollment"]
    session = ort.InferenceSession(str(exported["onnx"] / "model.onnx"), providers=["CPUExecutionProvider"])
    size = manifest["preprocessing"]["data_settings"]["image_size"]

    def feeds(waveforms: np.ndarray) -> dict[str, np.ndarray]:
        batch = waveforms.shape[0]
        return {
            "waveform": waveforms,
            "frames": np.zeros((batch, 4, 3, size, size), np.float32),
            "audio_mask": np.ones(batch, np.float32),
            "video_mask": np.zeros(batch, np.float32),
        }

    enroll, scored = _clips(4, seed=1), _clips(3, seed=2)
    stats = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds(enroll))))[
        "feature_stats"
    ]
    mean = stats[:, 0].mean(axis=0)
    std = np.sqrt(np.maximum(stats[:, 1].mean(axis=0) - mean * mean, enrollment["variance_floor"]))
    profile = {"speaker_mean": mean[None].astype(np.float32), "speaker_std": std[None].astype(np.float32)}
    outputs = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, {**feeds(scored), **profile}))
    )
    with torch.no_grad():
        tensors = {key: torch.from_numpy(value) for key, value in feeds(scored).items()}
        expected = model(
            *tensors.values(),
            torch.from_numpy(profile["speaker_mean"]).expand(3, -1),
            torch.from_numpy(profile["speaker_std"]).expand(3, -1),
        ).numpy()
        without = model(*tensors.values()).numpy()
    assert np.abs(outputs["logits"] - expected).max() <= 1e-4
    assert np.abs(expected - without).max() > 1e-3, "the profile changes the logits"
    plain = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds(scored))))["logits"]
    assert np.abs(plain - without).max() <= 1e-4, "no profile fed: the global statistics"


def test_the_runtime_loads_the_artifact_and_its_enrollment_section_checks(artifacts) -> None:
    """The manifest's enrollment section is the task's typed one: the runtime reads it, refuses a broken
    one, and speaker_profile (the rule the training data used) is what the manifest's words say."""
    from lexiedge_runtime import load
    from lexiedge_runtime.errors import ManifestError
    from lexiedge_runtime.tasks.av_classification import EnrollmentSection, speaker_profile
    from lexiedge_runtime.tasks.schema import check_manifest_schema

    _, exported = artifacts
    manifest = json.loads((exported["onnx"] / "manifest.json").read_text())
    assert set(manifest["enrollment"]) == {field.name for field in dataclasses.fields(EnrollmentSection)}
    assert EnrollmentSection.read(manifest).to_json() == manifest["enrollment"]  # nothing lost or added
    load(exported["onnx"], "cpu")  # the runtime checks the manifest against the schema when it loads
    broken = {**manifest, "enrollment": {**manifest["enrollment"], "features": 0}}
    with pytest.raises(ManifestError, match="enrollment.features"):
        check_manifest_schema(broken, "manifest.json")
    stats = np.stack([np.stack([np.full(3, m), np.full(3, m * m + 4.0)]) for m in (1.0, 3.0)])  # var 4 + 1
    mean, std = speaker_profile(stats, 1e-5)
    assert mean.shape == std.shape == (3,) and np.allclose(mean, 2.0) and np.allclose(std, np.sqrt(5.0))
