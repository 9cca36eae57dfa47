"""`lexiedge eval`: a run and its artifacts scored side by side, through the commands a user types.

The run and artifacts are the export tests' (tests/export/conftest.py): the cpu profile trained on
synthetic clips, exported to fp32 ONNX and static int8; the tutor's tiny Qwen2, merged and exported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

JFLEG = Path(__file__).resolve().parents[3] / "shared" / "data" / "jfleg"


def test_a_run_and_its_int8_artifact_have_the_same_metrics_within_the_exports_tolerance(
    av_run, av_artifact, cli, tmp_path
) -> None:
    int8 = av_artifact("onnx-int8-static")
    fp32 = av_artifact("onnx")
    out = tmp_path / "eval"
    result = cli("eval", str(av_run), str(fp32.path), str(int8.path), "--split", "val", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "eval.json").read_text())
    assert report["task"] == "av-classification" and report["primary_metric"] == "uar" and report["split"] == "val"
    run_row, fp32_row, int8_row = report["results"]
    assert (run_row["kind"], fp32_row["kind"], int8_row["kind"]) == ("run", "artifact", "artifact")
    assert set(run_row["metrics"]) == set(fp32_row["metrics"]) == set(int8_row["metrics"]) >= {"uar", "war", "macro_f1"}
    assert run_row["metrics"]["samples"] == int8_row["metrics"]["samples"] == int8.manifest["verification"][
        "validation"]["clips"], "the same clips the export was verified on"
    assert run_row["metrics"]["uar"] > 2 / 8, "the run learned"
    assert fp32_row["metrics"]["uar"] == pytest.approx(run_row["metrics"]["uar"], abs=1e-9), "fp32 ONNX is PyTorch"
    validation = int8.manifest["verification"]["validation"]
    tolerance = max(int8.manifest["verification"]["thresholds"]["max_uar_drop"], validation["task_metric"]["one_clip"])
    assert run_row["metrics"]["uar"] - int8_row["metrics"]["uar"] <= tolerance + 1e-9
    assert int8_row["delta_vs_first"] == pytest.approx(int8_row["metrics"]["uar"] - run_row["metrics"]["uar"])
    task_metric = int8.manifest["verification"]["validation"]["task_metric"]
    assert task_metric["pytorch"] == pytest.approx(run_row["metrics"]["uar"], abs=1e-9)
    assert task_metric["artifact"] == pytest.approx(int8_row["metrics"]["uar"], abs=1e-9), "eval = verification"
    for row in report["results"]:
        details = row["details"]
        assert sum(map(sum, details["confusion"])) == row["metrics"]["samples"] and len(details["confusion"]) == 8
        assert set(details["recall_per_label"]) == {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                                                    "surprised"}
        assert Path(row["files"]["confusion_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert json.loads(Path(row["files"]["confusion_json"]).read_text())["uar"] == row["metrics"]["uar"]
    table = result.stdout
    assert "pytorch (checkpoints/best)" in table and "onnx-int8" in table and "uar" in table


def test_eval_refuses_what_it_cannot_score_in_one_line(av_run, lm_run, cli, tmp_path) -> None:
    cases = [
        ((str(tmp_path / "nowhere"),), "no such run or artifact directory"),
        ((str(tmp_path),), "neither a run directory"),
        ((str(av_run), str(lm_run)), "different tasks"),
        ((str(av_run), "--split", "dev"), "train, val, test"),
    ]
    for args, expected in cases:
        result = cli("eval", *args, "--out", str(tmp_path / "out"))
        assert result.exit_code == 2, (args, result.stderr)
        assert expected in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr


@pytest.mark.shared_data
def test_the_tutor_is_scored_on_jfleg_from_pytorch_and_from_its_artifacts(lm_run, lm_artifact, cli, tmp_path) -> None:
    if not JFLEG.is_dir():
        pytest.skip(f"{JFLEG} is absent (the shared test data)")
    int4 = lm_artifact("onnx-int4")
    out = tmp_path / "eval"
    result = cli("eval", str(lm_run), str(int4.path), "--data", str(JFLEG), "--split", "test", "--limit", "3",
                 "--out", str(out))
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "eval.json").read_text())
    assert report["task"] == "causal-lm" and report["primary_metric"] == "bleu"
    keys = {"bleu", "chrf", "exact_match", "edit_distance", "valid_answers", "sentences"}
    for row in report["results"]:
        assert set(row["metrics"]) == keys and row["metrics"]["sentences"] == 3
        assert 0 <= row["metrics"]["bleu"] <= 100 and 0 <= row["metrics"]["exact_match"] <= 1
        corrections = [json.loads(line) for line in Path(row["files"]["corrections_jsonl"]).read_text().splitlines()]
        assert len(corrections) == 3 and all(len(c["references"]) == 4 for c in corrections)
