"""`lexiedge bench` on tiny real artifacts: what it writes and how it refuses bad input (never timings)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FAST = ["--warmup", "1", "--iterations", "3", "--rounds", "2"]
LATENCY_KEYS = {"p50", "p90", "p99", "mean", "min"}


def _read(out: Path) -> tuple[dict, str]:
    return json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text()


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


@pytest.mark.slow
def test_classifier_bench_writes_json_and_markdown_for_every_backend(cli, av_artifacts, tmp_path):
    out = tmp_path / "results"
    result = cli("bench", str(av_artifacts["onnx"]), str(av_artifacts["onnx-int8"]), *FAST, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    report, table = _read(out)

    names = [backend["name"] for backend in report["backends"]]
    assert names == ["torch", "ort", "ort-int8"]  # torch (the source run, eager) first: the baseline
    assert report["baseline"] == "torch" and report["task"] == "av-classification"
    manifest = json.loads((av_artifacts["onnx"] / "manifest.json").read_text())
    data = manifest["preprocessing"]["data_settings"]
    assert report["inputs"]["waveform"] == [1, round(data["clip_seconds"] * data["sample_rate"])]
    assert report["inputs"]["frames"] == [1, data["frames"], 3, data["image_size"], data["image_size"]]
    assert report["settings"]["threads"] == 2 and report["settings"]["iterations"] == 3
    for backend in report["backends"]:
        assert set(backend["latency_ms"]) == LATENCY_KEYS
        assert backend["latency_ms"]["min"] <= backend["latency_ms"]["p50"] <= backend["latency_ms"]["p99"]
        assert all(
            _positive(backend[key]) for key in ("throughput", "model_bytes", "load_s", "ratio", "speedup")
        )
        assert backend["peak_memory_bytes"] >= 0 and backend["throughput_unit"] == "clips/s"
    assert report["backends"][0]["ratio"] == 1.0
    by_name = {backend["name"]: backend for backend in report["backends"]}
    assert by_name["ort"]["artifact"] == str(av_artifacts["onnx"])
    assert by_name["ort"]["model_bytes"] == manifest["size_bytes"]
    assert by_name["torch"]["artifact"] is None

    for name in names:  # one markdown row and one console row per backend
        assert f"| {name} |" in table
        assert name in result.stdout
    assert "p50 ms" in table and "p99 ms" in table and "peak memory MB" in table
    assert report["command"].startswith("lexiedge bench ") and "--threads 2" in report["command"]
    assert not (out / "bench.png").exists()  # only with --plot
    assert "an eager PyTorch call is mostly framework overhead" in result.stdout  # a 1 MB model vs torch


def test_small_and_large_models_get_the_right_caveats() -> None:
    from lexiedge.caveats import overhead_note, tiny_lm_note

    assert overhead_note(1 << 20, compared_with_torch=True) and not overhead_note(1 << 20, compared_with_torch=False)
    assert overhead_note(500 << 20, compared_with_torch=True) is None
    assert "2-layer, 64-wide" in tiny_lm_note({"architecture": {"hidden_size": 64, "num_hidden_layers": 2}})
    assert tiny_lm_note({"architecture": {"hidden_size": 896, "num_hidden_layers": 24}}) is None  # Qwen2.5-0.5B


@pytest.mark.slow
def test_plot_writes_a_png_chart(cli, av_artifacts, tmp_path):
    import matplotlib.image

    out = tmp_path / "plotted"
    result = cli("bench", str(av_artifacts["onnx-int8"]), *FAST, "--out", str(out), "--plot")
    assert result.exit_code == 0, result.stderr
    png = out / "bench.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(png).shape
    assert height > 100 and width > 100


@pytest.mark.slow
def test_backends_option_selects_and_orders_the_backends(cli, av_artifacts, tmp_path):
    out = tmp_path / "chosen"
    result = cli(
        "bench",
        str(av_artifacts["onnx"]),
        str(av_artifacts["onnx-int8"]),
        *FAST,
        "--backends",
        "ort-int8,ort",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.stderr
    report, _ = _read(out)
    assert [backend["name"] for backend in report["backends"]] == ["ort-int8", "ort"]
    assert report["baseline"] == "ort-int8" and report["backends"][0]["ratio"] == 1.0


@pytest.mark.slow
def test_same_target_twice_is_told_apart_by_directory(cli, av_artifacts, tmp_path):
    copy = tmp_path / "second-int8"
    shutil.copytree(av_artifacts["onnx-int8"], copy)
    out = tmp_path / "twice"
    result = cli(
        "bench", str(av_artifacts["onnx-int8"]), str(copy), *FAST, "--backends", "ort-int8", "--out", str(out)
    )
    assert result.exit_code == 0, result.stderr
    report, _ = _read(out)
    assert [backend["name"] for backend in report["backends"]] == [
        f"ort-int8:{av_artifacts['onnx-int8'].name}",
        "ort-int8:second-int8",
    ]


@pytest.mark.slow
def test_unknown_backend_is_one_line_naming_the_available_ones(cli, av_artifacts, tmp_path):
    out = tmp_path / "never"
    result = cli("bench", str(av_artifacts["onnx"]), "--backends", "ort,tensorrt", "--out", str(out))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "'tensorrt'" in result.stderr and "available: torch, ort" in result.stderr
    assert not out.exists()


def test_bad_artifact_path_is_one_clear_line(cli, tmp_path):
    missing = tmp_path / "no-such-artifact"
    out = tmp_path / "never"
    result = cli("bench", str(missing), "--out", str(out))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(missing) in result.stderr and "no such artifact directory" in result.stderr
    assert not out.exists()


def test_directory_without_manifest_is_refused(cli, tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a graph")
    result = cli("bench", str(tmp_path), "--out", str(tmp_path / "never"))
    assert result.exit_code == 2
    assert "manifest.json" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_torch_without_its_source_run(cli, av_artifacts, tmp_path):
    """An artifact copied to a machine without the run: torch is left out by default, refused when asked for."""
    moved = tmp_path / "moved-onnx"
    shutil.copytree(av_artifacts["onnx"], moved)
    manifest = json.loads((moved / "manifest.json").read_text())  # the hashes cover the model files, not this
    manifest["source"]["run"] = str(tmp_path / "deleted-run")
    manifest["source"]["checkpoint_file"] = str(tmp_path / "deleted-run" / "final" / "model.safetensors")
    (moved / "manifest.json").write_text(json.dumps(manifest))

    out = tmp_path / "default"
    result = cli("bench", str(moved), *FAST, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert [backend["name"] for backend in _read(out)[0]["backends"]] == ["ort"]
    assert "torch left out" in result.stderr

    asked = cli("bench", str(moved), *FAST, "--backends", "torch,ort", "--out", str(tmp_path / "asked"))
    assert asked.exit_code == 2
    assert "deleted-run" in asked.stderr and "leave torch out" in asked.stderr
    assert len(asked.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_artifacts_of_different_tasks_are_refused(cli, av_artifacts, lm_artifact, tmp_path):
    result = cli("bench", str(av_artifacts["onnx"]), str(lm_artifact), "--out", str(tmp_path / "never"))
    assert result.exit_code == 2
    assert "different tasks" in result.stderr and "causal-lm" in result.stderr


@pytest.mark.slow
def test_llm_bench_reports_prefill_first_token_and_decode_speed(cli, lm_artifact, tmp_path):
    out = tmp_path / "llm"
    result = cli(
        "bench",
        str(lm_artifact),
        "--prompt-tokens",
        "16",
        "--new-tokens",
        "4",
        "--rounds",
        "1",
        "--out",
        str(out),
        "--plot",
    )
    assert result.exit_code == 0, result.stderr
    report, table = _read(out)
    assert report["task"] == "causal-lm"
    assert report["inputs"] == {"prompt_tokens": 16, "new_tokens": 4, "batch": 1, "search": "greedy"}
    assert [backend["name"] for backend in report["backends"]] == ["torch", "ort-int4"]
    for backend in report["backends"]:
        generation = backend["generation"]
        assert all(_positive(generation[key]) for key in ("prefill_ms", "ttft_ms", "decode_tokens_per_s"))
        assert generation["ttft_ms"] >= generation["prefill_ms"]
        assert (
            backend["throughput"] == generation["decode_tokens_per_s"]
            and backend["throughput_unit"] == "tokens/s"
        )
        assert set(backend["latency_ms"]) == LATENCY_KEYS
        assert f"| {backend['name']} |" in table
    assert "decode tok/s" in table and "TTFT ms" in table
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"


def _report(p50s: dict[str, float]):
    from lexiedge.latency.run import BackendResult, BenchReport, BenchSettings

    first = next(iter(p50s.values()))
    results = [
        BackendResult(name=name, kind="ort", artifact=None, model_bytes=1, load_s=0.1, peak_memory_bytes=1,
                      latency_ms={"p50": p50, "p90": 1.2 * p50, "p99": 1.5 * p50, "mean": p50, "min": p50},
                      throughput=1000 / p50, throughput_unit="clips/s", ratio=p50 / first, speedup=first / p50)
        for name, p50 in p50s.items()
    ]
    return BenchReport(task="av-classification", model="emotion-av", settings=BenchSettings(), inputs={},
                       results=results, machine={}, created="now")


def test_the_latency_axis_turns_logarithmic_when_one_backend_would_flatten_the_others(tmp_path) -> None:
    from lexiedge.latency.report import latency_figure, plot

    wide = latency_figure(_report({"torch": 240.0, "ort": 2.1, "ort-int8": 1.0}))
    narrow = latency_figure(_report({"ort": 2.1, "ort-int8": 1.4}))
    assert wide.axes[0].get_yscale() == "log" and narrow.axes[0].get_yscale() == "linear"
    # the legend sits above the axes, where no bar or p90/p99 mark can be
    for figure in (wide, narrow):
        figure.canvas.draw()
        legend, axes = figure.axes[0].get_legend().get_window_extent(), figure.axes[0].get_window_extent()
        assert legend.y0 >= axes.y1
    assert plot(_report({"torch": 240.0, "ort": 2.1}), tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
