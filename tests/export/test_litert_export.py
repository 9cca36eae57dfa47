"""`lexiedge export --target litert` / `litert-int8`: real .tflite graphs of a tiny trained emotion-av run,
converted by litert-torch in the converter's own venv, verified against PyTorch by the exporter, then
run by the runtime's LiteRT runner (ai-edge-litert), by `lexiedge infer` and by `lexiedge serve`.

The venv is built on first use (a few minutes, ~2 GB; tests/conftest.py keeps it in the user's cache
between sessions); where it cannot be built (offline), or ai-edge-litert is absent, these tests skip
with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cli_runner import lexiedge_ok
from export_helpers import av_splits, classifier_logits, pytorch_classifier
from test_model_card import assert_card_states_the_manifest

pytest.importorskip(
    "ai_edge_litert", reason="ai-edge-litert is not installed: pip install 'lexiedge[litert]'"
)

pytestmark = pytest.mark.slow
ATOL = 1e-4  # the fp32 threshold (av_classification.THRESHOLDS["fp32"])
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))  # serve_helpers


@pytest.fixture(scope="module")
def converter() -> Path:
    """The converter's venv (built here on first use), or a one-line skip where it cannot be built."""
    from lexiedge.errors import NotAvailableError
    from lexiedge_litert.converter_env import converter_python

    try:
        return converter_python(print)
    except NotAvailableError as exc:
        pytest.skip(f"the LiteRT converter's venv cannot be built here: {str(exc)[:200]}")


@pytest.fixture(scope="module")
def tflite_artifact(converter: Path, small_av_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("litert") / "emotion-av-litert"
    lexiedge_ok(
        "export",
        "--run",
        small_av_run,
        "--target",
        "litert",
        "--out",
        out,
        "--set",
        "models.emotion-av.export.options.litert.max_val_clips=16",
    )
    return out


def test_the_manifest_records_a_verified_fp32_graph_of_fixed_length(tflite_artifact: Path) -> None:
    from lexiedge.runtime.artifact import sha256_file

    manifest = json.loads((tflite_artifact / "manifest.json").read_text())
    assert manifest["target"] == "litert" and manifest["runtime"]["engine"] == "litert"
    assert manifest["files"]["model.tflite"]["sha256"] == sha256_file(tflite_artifact / "model.tflite")
    assert (tflite_artifact / "model.tflite").read_bytes()[4:8] == b"TFL3"  # the flatbuffer's identifier
    data = manifest["preprocessing"]["data_settings"]
    samples, frames = round(data["clip_seconds"] * data["sample_rate"]), data["frames"]
    assert (manifest["runtime"]["samples"], manifest["runtime"]["frames"]) == (samples, frames)
    assert manifest["export"]["fixed_shape"]["samples"] == samples
    assert manifest["signature"]["inputs"][0] == {
        "name": "waveform",
        "dtype": "float32",
        "shape": [1, samples],
    }
    verification = manifest["verification"]
    assert verification["passed"] is True and verification["validation"]["clips"] == 16
    for part in ("validation", "shape_sweep"):
        assert verification[part]["max_abs_diff"]["logits"] <= ATOL, part
    assert verification["shape_sweep"]["inputs"][1]["batch"] == 3  # batch 3, a clip without each modality
    metric = verification["validation"]["task_metric"]
    assert metric["name"] == "uar" and metric["delta"] == pytest.approx(
        metric["artifact"] - metric["pytorch"]
    )
    assert not list(tflite_artifact.glob(".litert-*")), "the converter's work folder is gone"
    card = assert_card_states_the_manifest(tflite_artifact, manifest)  # the model card, from this manifest
    assert "Android / iOS: LiteRT" in card and "lexiedge-runtime[litert]" in card
    assert f"fixed clip length: the graph takes {samples} samples" in card


def test_a_clip_of_another_length_is_fitted_as_training_fitted_it(
    tflite_artifact: Path, small_av_run: Path
) -> None:
    import lexiedge_runtime
    from lexiedge_runtime.inputs import centre_fit, uniform_indices
    from lexiedge_runtime.litert_runner import LiteRtClassifier

    classifier = lexiedge_runtime.load(tflite_artifact, "cpu")
    assert isinstance(classifier, LiteRtClassifier)
    samples, frames = classifier.program.samples, classifier.program.frames
    module = pytorch_classifier(small_av_run, classifier.manifest["source"]["checkpoint"])
    items = [av_splits(small_av_run).val[index] for index in range(2)]
    for length, count in ((samples // 3, 1), (samples * 2 + 7, frames + 3)):
        waveform = np.stack([np.resize(item["waveform"].numpy(), length) for item in items]).astype(
            np.float32
        )
        clip_frames = np.stack(
            [item["frames"].numpy()[np.arange(count) % item["frames"].shape[0]] for item in items]
        ).astype(np.float32)
        feeds = {
            "waveform": waveform,
            "frames": clip_frames,
            "audio_mask": np.ones(2, np.float32),
            "video_mask": np.ones(2, np.float32),
        }
        logits, probabilities = classifier.run(feeds)
        fitted = {
            "waveform": np.stack([centre_fit(row, samples) for row in waveform]),
            "frames": clip_frames[:, uniform_indices(count, frames)],
            "audio_mask": feeds["audio_mask"],
            "video_mask": feeds["video_mask"],
        }
        assert fitted["waveform"].shape == (2, samples) and fitted["frames"].shape[1] == frames
        assert np.abs(logits - classifier_logits(module, fitted)).max() <= ATOL, (length, count)
        assert np.allclose(probabilities.sum(-1), 1.0, atol=1e-5)


def test_lexiedge_infer_classifies_a_file_like_the_onnx_artifact(
    tflite_artifact: Path, small_av_artifact: Path, cli
) -> None:
    import lexiedge_runtime

    clip = next((small_av_artifact.parent / "synth").rglob("*.mp4"))
    litert, onnx = (lexiedge_runtime.load(path, "cpu") for path in (tflite_artifact, small_av_artifact))
    mine, theirs = litert.predict_file(clip), onnx.predict_file(clip)
    assert mine.label == theirs.label
    assert max(abs(mine.probabilities[k] - theirs.probabilities[k]) for k in mine.probabilities) <= ATOL
    result = cli("infer", str(tflite_artifact), str(clip))
    assert result.exit_code == 0, result.stderr
    assert clip.name in result.stdout and mine.label in result.stdout


def test_lexiedge_serve_answers_v1_emotion_from_the_tflite(
    tflite_artifact: Path, small_av_artifact: Path, tmp_path: Path
) -> None:
    import lexiedge_runtime
    from serve_helpers import Server, start_server, stop, upload, wait_until_up

    clip = next((small_av_artifact.parent / "synth").rglob("*.mp4"))
    process, port = start_server(
        [f"emotion={tflite_artifact}", "--threads", "1", "--log-level", "warning"], tmp_path / "server.log"
    )
    server = Server("127.0.0.1", port, "", process, tmp_path / "server.log")
    try:
        wait_until_up(server)
        reply = upload(server, clip.name, clip.read_bytes(), key=None)
    finally:
        stop(process)
    assert reply.status == 200, reply.body[:500]
    answer = json.loads(reply.body)
    expected = lexiedge_runtime.load(tflite_artifact, "cpu").predict_file(clip)
    assert answer["label"] == expected.label
    assert max(abs(answer["probabilities"][k] - p) for k, p in expected.probabilities.items()) <= 1e-5


@pytest.fixture(scope="module")
def int8_artifact(converter: Path, small_av_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("litert-int8") / "emotion-av-litert-int8"
    lexiedge_ok(
        "export",
        "--run",
        small_av_run,
        "--target",
        "litert-int8",
        "--out",
        out,
        "--set",
        "models.emotion-av.export.options.litert-int8.max_val_clips=16",
    )
    return out


def test_the_int8_graph_quantizes_fully_connected_and_conv_weights_outside_the_front_end(
    int8_artifact: Path, tflite_artifact: Path, small_av_run: Path
) -> None:
    import lexiedge_runtime

    manifest = json.loads((int8_artifact / "manifest.json").read_text())
    assert manifest["runtime"]["engine"] == "litert" and manifest["export"]["precision"] == "int8"
    quantization = manifest["quantization"]
    assert quantization["op_types"] == ["FULLY_CONNECTED", "CONV_2D"]
    assert quantization["kept_float"] == ["audio.frontend"]
    candidates = sum(quantization["ops_before"].get(op, 0) for op in quantization["op_types"])
    assert 0 < quantization["quantized_ops"] < candidates, "the kept-float modules' ops stay fp32"
    assert manifest["verification"]["passed"] is True
    card = assert_card_states_the_manifest(int8_artifact, manifest)
    assert "kept in float: audio.frontend: outputs differ" in card
    assert (int8_artifact / "model.tflite").stat().st_size < 0.9 * (
        tflite_artifact / "model.tflite"
    ).stat().st_size
    classifier = lexiedge_runtime.load(int8_artifact, "cpu")
    module = pytorch_classifier(small_av_run, manifest["source"]["checkpoint"])
    items = [av_splits(small_av_run).val[index] for index in range(3)]
    feeds = {
        "waveform": np.stack([item["waveform"].numpy() for item in items]).astype(np.float32),
        "frames": np.stack([item["frames"].numpy() for item in items]).astype(np.float32),
        "audio_mask": np.ones(3, np.float32),
        "video_mask": np.ones(3, np.float32),
    }
    logits, _ = classifier.run(feeds)
    difference = np.abs(logits - classifier_logits(module, feeds)).max()
    assert 0 < difference <= 0.1, "int8, so not bit-exact; but within the noise verification measured"


def test_a_speaker_normalised_model_is_refused_in_one_line(cli, enrollment_run) -> None:
    out = enrollment_run.run.parent / "never-litert"
    result = cli("export", "--run", str(enrollment_run.run), "--target", "litert", "--out", str(out))
    assert result.exit_code == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "normalises by speaker" in line and "--target onnx" in line, line
    assert not out.exists()


def test_a_keep_float_typo_is_refused_in_one_line(cli, small_av_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = cli(
        "export",
        "--run",
        str(small_av_run),
        "--target",
        "litert-int8",
        "--out",
        str(out),
        "--set",
        "models.emotion-av.export.options.litert-int8.keep_float=[audio.frontendd]",
    )
    assert result.exit_code == 2, result.stderr
    assert "\n" not in result.stderr.strip() and "audio.frontendd, not a module" in result.stderr
    assert not (out / "model.tflite").exists()


def test_a_venv_that_cannot_be_built_is_one_line_exit_3_and_leaves_nothing(
    small_av_run: Path, tmp_path: Path
) -> None:
    """Offline: pip finds no index; the export says so in one line and leaves neither venv nor artifact."""
    venvs, out = tmp_path / "venvs", tmp_path / "art"
    env = {**os.environ, "LEXIEDGE_VENVS": str(venvs), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lexiedge.cli",
            "export",
            "--run",
            str(small_av_run),
            "--target",
            "litert",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 3, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "could not install torch==" in last and "litert-torch==" in last, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "building the LiteRT converter's own environment" in done.stdout + done.stderr
    assert [path.name for path in venvs.iterdir() if not path.name.endswith(".lock")] == []
    assert not list(out.rglob("model.tflite"))


WITHOUT_LITERT = textwrap.dedent(
    """
    import importlib.util, sys
    real = importlib.util.find_spec
    hidden = "ai_edge_litert"
    importlib.util.find_spec = lambda name, *rest: None if name.split(".")[0] == hidden else real(name, *rest)
    import lexiedge_runtime  # an interpreter where ai-edge-litert is not installed
    try:
        lexiedge_runtime.load(sys.argv[1], "cpu")
    except lexiedge_runtime.MissingExtraError as exc:
        print("refused:", exc)
    """
)


def test_without_ai_edge_litert_the_runtime_names_the_extra(tflite_artifact: Path, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(WITHOUT_LITERT)
    result = subprocess.run(
        [sys.executable, str(script), str(tflite_artifact)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == (
        "refused: running a LiteRT (.tflite) artifact needs ai-edge-litert (not installed): "
        "pip install 'lexiedge-runtime[litert]'"
    )


def test_a_manifest_without_the_fixed_length_is_refused_in_one_line(
    tflite_artifact: Path, tmp_path: Path
) -> None:
    import shutil

    import lexiedge_runtime

    copy = tmp_path / "edited"
    shutil.copytree(tflite_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["runtime"]["samples"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(lexiedge_runtime.ArtifactError) as refused:
        lexiedge_runtime.load(copy, "cpu")
    assert "\n" not in str(refused.value) and "fixed samples and frames" in str(refused.value)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"device": "cuda"}, "DeviceNotAvailableError",
         "device 'cuda': LiteRT artifacts run on the CPU here; expected auto or cpu"),
        ({"providers": ["CPUExecutionProvider"]}, "InputValueError",
         "runs on LiteRT: providers apply to ONNX Runtime artifacts"),
        ({"warm_prompt": ["hello"]}, "InputValueError",
         "is a classifier: cache_tokens and warm_prompt apply to text generation"),
    ],
)
def test_options_the_interpreter_cannot_honour_are_refused_in_one_line(
    tflite_artifact: Path, options: dict, error: str, message: str
) -> None:
    import lexiedge_runtime
    from lexiedge_runtime import errors

    with pytest.raises(getattr(errors, error), match=message):
        lexiedge_runtime.load(tflite_artifact, **options)
