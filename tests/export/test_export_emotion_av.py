"""emotion-av exported to every target (onnx, onnx-int8 dynamic and static, ort-mobile).

Each artifact passed verification at input shapes the trace never had (the manifest says which), and
is run again here with ONNX Runtime, at yet another shape, on real clips of the held-out actor, and
compared with the PyTorch model rebuilt from the run's checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_helpers import (
    AV_VARIANTS,
    CLIPS_PER_ACTOR,
    TEST_ACTORS,
    VAL_ACTORS,
    av_splits,
    classifier_logits,
    ops_in_ort_file,
    ort_session,
    parse_operator_config,
    pytorch_classifier,
    reshaped_clips,
    run_session,
)

pytestmark = pytest.mark.slow

CHANCE = 1 / 8
FP32 = ("onnx", "ort-mobile")
INT8 = ("onnx-int8-dynamic", "onnx-int8-static")
# A shape no export traced or verified on: 5 clips, 1.2 s of audio (trained on 1.5 s), 3 frames of 4.
NEW_SHAPE = {"indices": [0, 3, 6, 9, 13], "samples": 19200, "frame_picks": [0, 1, 3]}


def test_the_run_learned_far_above_chance(av_run: Path) -> None:
    test = json.loads((av_run / "test_metrics.json").read_text())
    assert test["split"] == "test" and test["samples"] == CLIPS_PER_ACTOR * len(TEST_ACTORS)
    assert test["uar"] >= 3 * CHANCE, f"test UAR {test['uar']:.3f}: the run did not learn (chance {CHANCE})"


@pytest.mark.parametrize("variant", AV_VARIANTS)
def test_verification_passed_at_shapes_other_than_the_trace(av_artifact, variant: str) -> None:
    artifact = av_artifact(variant)
    report = artifact.manifest["verification"]
    assert report["passed"] is True
    trace = report["trace_shape"]
    assert trace["batch"] >= 2 and trace["frames"] >= 2, "a size-1 trace axis would be specialised away"

    sweep = report["shape_sweep"]
    assert sorted(shape["batch"] for shape in sweep["inputs"]) == [1, 3]
    for shape in sweep["inputs"]:
        assert shape["samples"] != trace["samples"] and shape["frames"] != trace["frames"], shape
    assert len({shape["samples"] for shape in sweep["inputs"]}) == 2, "a shorter and a longer clip"

    validation = report["validation"]
    assert validation["clips"] == CLIPS_PER_ACTOR * len(VAL_ACTORS), "every clip of the validation actors"
    for numbers in (sweep, validation):
        diff = numbers["max_abs_diff"]["logits"]
        if variant in FP32:
            assert 0 <= diff <= 1e-4
        else:  # int8 is not exact; bounded well below the logits' spread
            assert 0 < diff < 1.0
    # near-ties flip on noise, on one CPU or another: agreement is enforced on the decisive clips
    decisive, near_ties = validation["decisive"], validation["near_ties"]
    assert decisive["samples"] + near_ties["samples"] == validation["clips"]
    assert decisive["share"] >= report["thresholds"]["min_decisive_share"]
    assert decisive["agreement"] >= (1.0 if variant in FP32 else 0.99)
    assert validation["tie_margin"] >= 2 * validation["noise_logit_p99"]
    metric = validation["task_metric"]
    assert metric["name"] == "uar" and -metric["delta"] <= max(report["thresholds"]["max_uar_drop"], metric["one_clip"])
    assert 0 < metric["one_clip"] <= 1 / 8, "one clip of the rarest emotion, weighted by 1 / classes"


@pytest.mark.parametrize("variant", AV_VARIANTS)
def test_the_artifact_matches_pytorch_on_real_clips_at_a_new_shape(av_artifact, variant: str) -> None:
    artifact = av_artifact(variant)
    manifest = artifact.manifest
    report = manifest["verification"]
    new = (len(NEW_SHAPE["indices"]), NEW_SHAPE["samples"], len(NEW_SHAPE["frame_picks"]))
    seen = [report["trace_shape"], *report["shape_sweep"]["inputs"], *report["validation"]["shapes"]]
    assert new not in [(s["batch"], s["samples"], s["frames"]) for s in seen]

    feeds = reshaped_clips(av_splits(artifact.run).test, **NEW_SHAPE)
    feeds["video_mask"][2], feeds["frames"][2] = 0.0, 0.0  # one clip without video, as the contract allows
    outputs = run_session(ort_session(artifact.path / manifest["runtime"]["graph"]), feeds)
    reference = classifier_logits(pytorch_classifier(artifact.run, manifest["source"]["checkpoint"]), feeds)

    logits, probabilities = outputs["logits"], outputs["probabilities"]
    assert logits.shape == probabilities.shape == (new[0], len(manifest["labels"]))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    if variant in FP32:
        np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=0)
        assert (logits.argmax(-1) == reference.argmax(-1)).all()
    else:
        assert np.abs(logits - reference).max() < 0.5
        assert (logits.argmax(-1) == reference.argmax(-1)).sum() >= new[0] - 1


@pytest.mark.parametrize("variant", INT8)
def test_int8_keeps_top1_agreement_on_the_validation_split_of_the_trained_run(av_artifact, variant: str) -> None:
    manifest = av_artifact(variant).manifest
    mode = variant.rsplit("-", 1)[1]
    assert manifest["settings"]["mode"] == mode and manifest["quantization"]["mode"] == mode
    report = manifest["verification"]
    assert report["thresholds"]["min_top1"] == 0.99, "the shipped threshold"
    validation = report["validation"]
    clips = CLIPS_PER_ACTOR * len(VAL_ACTORS)
    assert validation["clips"] == clips >= 100
    assert validation["decisive"]["agreement"] >= 0.99
    accuracy = validation["accuracy"]
    assert accuracy["pytorch"] > 2 * CHANCE
    assert abs(accuracy["artifact"] - accuracy["pytorch"]) <= 1 - validation["top1_agreement"] + 1e-9

    quantization = manifest["quantization"]
    counts = quantization["quantized_nodes"]
    assert counts.get("MatMulInteger", 0) + counts.get("DynamicQuantizeMatMul", 0) > 0, counts
    if mode == "static":
        assert counts.get("QuantizeLinear", 0) > 0 and counts.get("DequantizeLinear", 0) > 0, counts
        assert quantization["calibration_split"] == "train" and quantization["calibration_clips"] > 0
    assert manifest["size_bytes"] < 0.75 * quantization["fp32_bytes"], "int8 weights are smaller"


def test_the_ort_file_loads_and_its_operator_config_lists_the_ops_it_uses(av_artifact, tmp_path: Path) -> None:
    artifact = av_artifact("ort-mobile")
    manifest = artifact.manifest
    ort_file = artifact.path / manifest["runtime"]["graph"]
    assert ort_file.suffix == ".ort" and manifest["model_files"] == [ort_file.name]
    session = ort_session(ort_file)
    rng = np.random.default_rng(0)
    feeds = {"waveform": rng.uniform(-0.1, 0.1, (1, 8000)).astype(np.float32),
             "frames": rng.uniform(0, 1, (1, 2, 3, 48, 48)).astype(np.float32),
             "audio_mask": np.ones(1, np.float32), "video_mask": np.ones(1, np.float32)}
    assert run_session(session, feeds)["probabilities"].shape == (1, 8)

    config = artifact.path / manifest["mobile"]["required_operators_config"]
    listed = parse_operator_config(config)
    assert listed == ops_in_ort_file(ort_file, tmp_path), "the config must list exactly the ops of the .ort graph"
    assert manifest["mobile"]["required_operators"] == {key: sorted(ops) for key, ops in listed.items()}
    assert {"Conv", "MatMul", "Softmax"} <= set().union(*listed.values())
