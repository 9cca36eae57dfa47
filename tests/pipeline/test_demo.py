"""`lexiedge demo --quick`: the README's main command, trimmed, through the same steps and code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lexiedge.runtime import read_manifest, sha256_file


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("demo") / "lexiedge-demo"
    done = subprocess.run([sys.executable, "-m", "lexiedge.cli", "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    return done, out


def test_the_demo_runs_every_stage_and_reports_where_everything_is(demo) -> None:
    done, out = demo
    assert done.returncode == 0, done.stderr[-3000:]
    report = done.stdout[done.stdout.index("lexiedge demo: report"):]
    for stage in ("train emotion-av", "train qwen-lora", "merge", "export emotion-av onnx-int8",
                  "export qwen-lora onnx-int4", "bench emotion-av", "bench qwen-lora", "runtime: clips", "runtime: tutor"):
        assert stage in report, stage
    assert "runs/emotion-av" in report and "artifacts/qwen-lora/onnx-int4" in report
    assert f"everything is under {out}" in report
    for step in ("$ lexiedge data synth-av", "$ lexiedge export --run", "$ lexiedge infer"):
        assert step in done.stdout, "every step is shown as the command that repeats it"
    test = json.loads((out / "runs" / "emotion-av" / "test_metrics.json").read_text())
    assert test["uar"] > 2 / 8, "the emotion model beats chance on the unseen actor"
    assert (out / "runs" / "qwen-lora" / "merged" / "config.json").is_file()
    for model, targets in (("emotion-av", ("onnx", "onnx-int8")), ("qwen-lora", ("onnx", "onnx-int8", "onnx-int4"))):
        for target in targets:
            artifact = out / "artifacts" / model / target
            manifest = read_manifest(artifact)
            assert manifest["target"] == target and manifest["verification"]["passed"] is True
            for name, entry in manifest["files"].items():
                assert sha256_file(artifact / name) == entry["sha256"], name
    for model in ("emotion-av", "qwen-lora"):
        bench = json.loads((out / "bench" / model / "bench.json").read_text())
        assert bench["baseline"] == "torch" and len(bench["backends"]) >= 2
        assert (out / "bench" / model / "bench.md").is_file()
        # measured as `lexiedge bench` alone measures it: a process that trained and exported first reuses
        # its freed heap, and loading a backend there added 0-1 MB
        assert all(result["peak_memory_bytes"] > 0 for result in bench["backends"]), bench["backends"]


def test_the_demo_refuses_to_overwrite_a_directory(demo, cli) -> None:
    _, out = demo
    result = cli("demo", "--quick", "--out", str(out))
    assert result.exit_code == 2 and "exists and is not empty" in result.stderr and "--force" in result.stderr
    assert (out / "artifacts" / "emotion-av" / "onnx" / "manifest.json").is_file(), "nothing was removed"
