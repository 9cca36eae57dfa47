"""--json on plan, profiles show, bench and eval: one JSON document on stdout, nothing else mixed in."""

from __future__ import annotations

import json

FAST = ["--warmup", "1", "--iterations", "3", "--rounds", "1"]


def test_profiles_show_json(cli):
    result = cli("profiles", "show", "cpu", "--json", "--set", "models.emotion-av.train.lr=0.01")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["valid"] is True and document["source"].endswith("cpu.yaml")
    assert document["profile"]["models"]["emotion-av"]["train"]["lr"] == 0.01


def test_plan_json(cli):
    result = cli("plan", "--profile", "cpu", "--model", "emotion-av", "--json")
    assert result.exit_code == 0, result.stderr
    (plan,) = json.loads(result.stdout)["plans"]
    assert plan["model"] == "emotion-av" and plan["profile"] == "cpu" and isinstance(plan["fits"], bool)
    assert plan["total_bytes"] > 0 and plan["device"]["kind"] == "cpu"
    assert plan["effective_batch"] == plan["micro_batch"] * plan["grad_accum"]


def test_bench_json(cli, av_artifacts, tmp_path):
    out = tmp_path / "results"
    result = cli("bench", str(av_artifacts["onnx"]), "--backends", "ort", *FAST, "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [backend["name"] for backend in document["backends"]] == ["ort"]
    assert document == {**json.loads((out / "bench.json").read_text()), "written": document["written"]}


def test_eval_json(cli, av_artifacts, tmp_path):
    out = tmp_path / "eval"
    result = cli("eval", str(av_artifacts["onnx"]), "--split", "val", "--limit", "4", "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["path"] == str(out / "eval.json")
    saved = json.loads((out / "eval.json").read_text())
    assert {k: v for k, v in document.items() if k != "path"} == saved
