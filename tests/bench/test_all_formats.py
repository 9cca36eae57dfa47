"""`lexiedge bench --all-formats` on tiny real artifacts: which rows it makes, what each says, how it refuses
bad input. Behaviour only: no timing is compared with anything.

The bench runs as a user runs it, in a process of its own (`python -m lexiedge`): OpenVINO imported into
pytest's process left its stderr closed for later tests (issue 29's note), and a child process is also
where a runtime can be made absent for real (``sys.modules[name] = None``: its import fails).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FAST = ["--warmup", "1", "--iterations", "2", "--rounds", "2", "--threads", "1"]


def bench(*args: object, hide: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`lexiedge bench ARGS` in a new process; ``hide``: packages made uninstalled there."""
    code = (
        "import sys\n"
        + "".join(f"sys.modules[{name!r}] = None\n" for name in hide)
        + ("from lexiedge.cli import main\nsys.argv[0] = 'lexiedge'\nsys.exit(main())")
    )
    command = [sys.executable, "-c", code, "bench", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)


def _rows(out: Path) -> dict[str, dict]:
    report = json.loads((out / "formats.json").read_text())
    assert report["format"] == "lexiedge-bench-formats"
    return {row["backend"]: row for row in report["rows"]}


def test_one_table_over_every_format_and_backend_with_verification_and_deltas(av_artifacts, tmp_path) -> None:
    out = tmp_path / "formats"
    onnx, int8 = av_artifacts["onnx"], av_artifacts["onnx-int8"]
    result = bench("--all-formats", onnx, int8, *FAST, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _rows(out)
    openvino = importlib.util.find_spec("openvino") is not None  # found, not imported (see the module doc)
    assert list(rows) == ["torch", "ort", *(["openvino"] if openvino else []), "ort-int8"]
    assert rows["torch"]["format"] == "pytorch eager" and rows["torch"]["max_abs_diff_vs_eager"] == 0.0
    for name, artifact in (("ort", onnx), ("ort-int8", int8)):
        row, manifest = rows[name], json.loads((artifact / "manifest.json").read_text())
        validation = manifest["verification"]["validation"]
        assert row["status"] == "measured" and row["artifact"] == str(artifact)
        assert row["format"] == manifest["target"] and row["size_bytes"] == manifest["size_bytes"]
        assert (
            row["verified"] is True and row["manifest_max_abs_diff"] == validation["max_abs_diff"]["logits"]
        )
        assert row["metric"] == {
            key: validation["task_metric"][key] for key in ("name", "pytorch", "artifact", "delta")
        }
        assert row["result"]["latency_ms"]["p50"] > 0 and row["result"]["ratio"] > 0
    assert rows["ort"]["max_abs_diff_vs_eager"] <= 1e-4  # fp32: the export's threshold holds on this clip too
    assert rows["ort-int8"]["max_abs_diff_vs_eager"] > 0  # int8 is not bit-exact
    if openvino:
        assert rows["openvino"]["format"] == "onnx" and rows["openvino"]["max_abs_diff_vs_eager"] <= 1e-4
    table = (out / "formats.md").read_text()
    for name, row in rows.items():
        assert f"| {row['format']} | {name} |" in table
    assert "max \\|Δ\\| vs eager, here" in table and "UAR" in table and "load average" in table
    assert (out / "formats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_format_whose_runtime_is_missing_is_a_row_naming_the_extra(av_artifacts, tmp_path) -> None:
    out = tmp_path / "formats"
    result = bench("--all-formats", av_artifacts["onnx"], *FAST, "--out", out, hide=("openvino",))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _rows(out)
    assert rows["openvino"]["status"] == "not installed" and rows["openvino"]["result"] is None
    assert rows["openvino"]["note"] == "openvino not installed here: pip install 'lexiedge-runtime[openvino]'"
    assert rows["ort"]["status"] == "measured"
    assert "pip install 'lexiedge-runtime[openvino]'" in (out / "formats.md").read_text()


def test_llm_artifacts_get_decode_speed_and_time_to_first_token(lm_artifact, tmp_path) -> None:
    out = tmp_path / "formats"
    result = bench(
        "--all-formats",
        lm_artifact,
        "--rounds",
        "1",
        "--prompt-tokens",
        "8",
        "--new-tokens",
        "4",
        "--threads",
        "1",
        "--out",
        out,
        "--json",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    assert printed["task"] == "causal-lm" and str(out / "formats.json") in printed["written"]
    rows = _rows(out)
    assert list(rows) == ["torch", "ort-int4"]
    for row in rows.values():
        generation = row["result"]["generation"]
        assert generation["decode_tokens_per_s"] > 0 and generation["ttft_ms"] > 0
        assert row["max_abs_diff_vs_eager"] is None  # tokens, not one clip's logits: said in the table
    assert rows["ort-int4"]["verified"] is True
    assert "max |Δ| is not measured for LLMs here" in (out / "formats.md").read_text()


def test_bad_input_is_one_line_and_exit_2(av_artifacts, tmp_path) -> None:
    plain = tmp_path / "photos"
    plain.mkdir()
    result = bench("--all-formats", plain, "--out", tmp_path / "a")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "manifest" in result.stderr

    unknown = tmp_path / "unknown-format"
    shutil.copytree(av_artifacts["onnx"], unknown)
    manifest = json.loads((unknown / "manifest.json").read_text())
    manifest["runtime"]["engine"] = "no-such-engine"
    (unknown / "manifest.json").write_text(json.dumps(manifest))
    result = bench("--all-formats", unknown, "--out", tmp_path / "b")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no-such-engine" in result.stderr

    result = bench("--all-formats", av_artifacts["onnx"], "--backends", "ort", "--out", tmp_path / "c")
    assert result.returncode == 2 and "leave out --backends" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
