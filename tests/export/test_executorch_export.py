"""`lexiedge export --target executorch`: a real .pte program of a tiny trained emotion-av run, verified
against PyTorch by the exporter, then loaded by the runtime's ExecuTorch runner and checked here again
on real clips at shapes the exporter never ran (the shortest and the longest input the runtime takes)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cli_runner import lexiedge_ok
from export_helpers import av_splits, classifier_logits, pytorch_classifier
from test_model_card import assert_card_states_the_manifest

pytest.importorskip("executorch", reason="executorch is not installed: pip install 'lexiedge[executorch]'")

pytestmark = pytest.mark.slow
ATOL = 1e-4  # the fp32 threshold (av_classification.THRESHOLDS["fp32"])


@pytest.fixture(scope="module")
def pte_artifact(small_av_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("executorch") / "emotion-av-executorch"
    lexiedge_ok(
        "export",
        "--run",
        small_av_run,
        "--target",
        "executorch",
        "--out",
        out,
        "--set",
        "models.emotion-av.export.options.executorch.max_val_clips=16",
    )
    return out


def test_the_manifest_records_a_verified_fp32_program(pte_artifact: Path) -> None:
    from lexiedge.runtime.artifact import sha256_file

    manifest = json.loads((pte_artifact / "manifest.json").read_text())
    assert manifest["target"] == "executorch" and manifest["runtime"]["engine"] == "executorch"
    assert manifest["files"]["model.pte"]["sha256"] == sha256_file(pte_artifact / "model.pte")
    assert (pte_artifact / "model.pte").read_bytes()[4:8] == b"ET12"  # ExecuTorch's flatbuffer identifier
    verification = manifest["verification"]
    assert verification["passed"] is True
    for part in ("validation", "shape_sweep"):
        assert verification[part]["max_abs_diff"]["logits"] <= ATOL, part
    metric = verification["validation"]["task_metric"]
    assert metric["name"] == "uar" and metric["delta"] == pytest.approx(
        metric["artifact"] - metric["pytorch"]
    )
    assert verification["validation"]["clips"] == 16
    card = assert_card_states_the_manifest(pte_artifact, manifest)  # the model card, from this manifest
    assert "Android / iOS: ExecuTorch's runtime" in card and "lexiedge-runtime[executorch]" in card
    assert "one clip per call (batch 1)" in card
    assert manifest["signature"]["inputs"][0] == {
        "name": "waveform",
        "dtype": "float32",
        "shape": [1, "samples"],
    }
    assert manifest["dynamic_axes"]["frames"] == {"1": "frames"}


def test_the_runtime_runs_the_program_like_pytorch_at_the_extreme_input_shapes(
    pte_artifact: Path, small_av_run: Path
) -> None:
    import lexiedge_runtime
    from lexiedge_runtime.executorch_runner import ExecutorchClassifier

    classifier = lexiedge_runtime.load(pte_artifact, "cpu")
    assert isinstance(classifier, ExecutorchClassifier)
    manifest = classifier.manifest
    module = pytorch_classifier(small_av_run, manifest["source"]["checkpoint"])
    dataset = av_splits(small_av_run).val
    items = [dataset[index] for index in range(3)]
    rate, longest = (
        classifier.spec.sample_rate,
        int(classifier.spec.max_input_seconds * classifier.spec.sample_rate),
    )
    for samples, frame_count in ((round(0.1 * rate), 1), (longest, classifier.spec.max_frames)):
        waveform = np.stack([np.resize(item["waveform"].numpy(), samples) for item in items]).astype(
            np.float32
        )
        frames = np.stack(
            [item["frames"].numpy()[np.arange(frame_count) % item["frames"].shape[0]] for item in items]
        ).astype(np.float32)
        feeds = {
            "waveform": waveform,
            "frames": frames,
            "audio_mask": np.ones(3, np.float32),
            "video_mask": np.ones(3, np.float32),
        }
        logits, probabilities = classifier.run(feeds)
        reference = classifier_logits(module, feeds)
        assert logits.shape == reference.shape == (3, len(classifier.labels))
        assert np.abs(logits - reference).max() <= ATOL, (samples, frame_count)
        assert np.allclose(probabilities.sum(-1), 1.0, atol=1e-5)


def test_a_file_gets_the_onnx_artifacts_probabilities(pte_artifact: Path, small_av_artifact: Path) -> None:
    import lexiedge_runtime

    clip = next((small_av_artifact.parent / "synth").rglob("*.mp4"))
    executorch, onnx = (lexiedge_runtime.load(path, "cpu") for path in (pte_artifact, small_av_artifact))
    mine, theirs = executorch.predict_file(clip), onnx.predict_file(clip)
    assert mine.label == theirs.label
    assert max(abs(mine.probabilities[k] - theirs.probabilities[k]) for k in mine.probabilities) <= ATOL


@pytest.fixture(scope="module")
def int8_artifact(small_av_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("executorch-int8") / "emotion-av-executorch-int8"
    options = "models.emotion-av.export.options.executorch-int8"
    lexiedge_ok(
        "export",
        "--run",
        small_av_run,
        "--target",
        "executorch-int8",
        "--out",
        out,
        "--set",
        f"{options}.max_val_clips=16",
        "--set",
        f"{options}.calibration_clips=16",
    )
    return out


def test_the_int8_program_keeps_the_audio_subsampling_in_float_and_agrees_with_pytorch(
    int8_artifact: Path, pte_artifact: Path, small_av_run: Path
) -> None:
    import lexiedge_runtime

    manifest = json.loads((int8_artifact / "manifest.json").read_text())
    assert manifest["runtime"]["engine"] == "executorch" and manifest["export"]["precision"] == "int8"
    quantization = manifest["quantization"]
    assert quantization["kept_float"][1:] == ["audio.subsampling"] and quantization["quantized_modules"] > 40
    assert quantization["calibration_clips"] == 16
    assert quantization["scheme"].endswith("(minmax calibration)"), "the default observer, named as it ran"
    validation = manifest["verification"]["validation"]
    assert manifest["verification"]["passed"] is True and validation["decisive"]["agreement"] >= 0.99
    card = assert_card_states_the_manifest(int8_artifact, manifest)
    assert "kept in float: log-mel front end (functional ops), audio.subsampling" in card
    assert (int8_artifact / "model.pte").stat().st_size < 0.8 * (pte_artifact / "model.pte").stat().st_size
    classifier = lexiedge_runtime.load(int8_artifact, "cpu")
    module = pytorch_classifier(small_av_run, manifest["source"]["checkpoint"])
    items = [av_splits(small_av_run).val[index] for index in range(3)]
    feeds = {
        "waveform": np.stack([np.resize(item["waveform"].numpy(), 480_000) for item in items]),
        "frames": np.stack(
            [item["frames"].numpy()[np.arange(40) % item["frames"].shape[0]] for item in items]
        ),
        "audio_mask": np.ones(3, np.float32),
        "video_mask": np.ones(3, np.float32),
    }
    feeds = {name: array.astype(np.float32) for name, array in feeds.items()}
    logits, _ = classifier.run(feeds)
    difference = np.abs(logits - classifier_logits(module, feeds)).max()
    assert 0 < difference <= 0.1, "int8, so not bit-exact; but within the noise verification measured"


def test_a_speaker_normalised_model_is_refused_in_one_line(cli, enrollment_run) -> None:
    out = enrollment_run.run.parent / "never-executorch"
    result = cli("export", "--run", str(enrollment_run.run), "--target", "executorch", "--out", str(out))
    assert result.exit_code == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "normalises by speaker" in line and "--target onnx" in line, line
    assert not out.exists()


THREADS_APP = textwrap.dedent(
    """
    import sys
    import lexiedge_runtime
    first = lexiedge_runtime.load(sys.argv[1], "cpu", threads=1)
    second = lexiedge_runtime.load(sys.argv[1], "cpu", threads=1)  # the pool's size: allowed
    try:
        lexiedge_runtime.load(sys.argv[1], "cpu", threads=2)
    except lexiedge_runtime.InputValueError as exc:
        print("refused:", exc)
    print("label:", first.predict(waveform=[0.01] * 16000).label in first.labels)
    """
)


def test_a_second_thread_count_in_one_process_is_refused_not_a_crash(
    pte_artifact: Path, tmp_path: Path
) -> None:
    """ExecuTorch's thread pool is process-wide; resizing it under an open program corrupts the heap."""
    script = tmp_path / "app.py"
    script.write_text(THREADS_APP)
    result = subprocess.run(
        [sys.executable, str(script), str(pte_artifact)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused: threads=2: ExecuTorch's thread pool is process-wide" in result.stdout
    assert "label: True" in result.stdout


WITHOUT_EXECUTORCH = textwrap.dedent(
    """
    import importlib.util, sys
    real = importlib.util.find_spec
    hidden = "executorch"
    importlib.util.find_spec = lambda name, *rest: None if name.split(".")[0] == hidden else real(name, *rest)
    import lexiedge_runtime  # an interpreter where executorch is not installed
    try:
        lexiedge_runtime.load(sys.argv[1], "cpu")
    except lexiedge_runtime.MissingExtraError as exc:
        print("refused:", exc)
    """
)


def test_without_executorch_the_runtime_names_the_extra(pte_artifact: Path, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(WITHOUT_EXECUTORCH)
    result = subprocess.run(
        [sys.executable, str(script), str(pte_artifact)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == (
        "refused: running an ExecuTorch (.pte) artifact needs executorch (not installed): "
        "pip install 'lexiedge-runtime[executorch]'"
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"device": "cuda"}, "DeviceNotAvailableError",
         r"device 'cuda': ExecuTorch artifacts run on the CPU \(XNNPACK\); expected auto or cpu"),
        ({"providers": ["CPUExecutionProvider"]}, "InputValueError",
         "runs on ExecuTorch: providers apply to ONNX Runtime artifacts"),
        ({"cache_tokens": 64}, "InputValueError",
         "is a classifier: cache_tokens and warm_prompt apply to text generation"),
    ],
)
def test_options_the_program_cannot_honour_are_refused_in_one_line(
    pte_artifact: Path, options: dict, error: str, message: str
) -> None:
    import lexiedge_runtime
    from lexiedge_runtime import errors

    with pytest.raises(getattr(errors, error), match=message):
        lexiedge_runtime.load(pte_artifact, **options)
