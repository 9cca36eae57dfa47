"""Deliberately broken exports are caught by verification, and nothing is published.

The graph writer of the model plugin is swapped for a real, broken one: torch.onnx with static axes
(a graph specialised to its trace shape), or the plugin's own export with its weights perturbed
afterwards (numbers off). The LLM gets the same treatment through the GenAI builder's output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lexiedge_onnx.classifier
import lexiedge_onnx.exporters
import numpy as np
import pytest
from export_helpers import ort_session
from rich.console import Console

from lexiedge.export import AgreementError, AtolError, ExportRequest, ShapeError, VerificationError, export

pytestmark = pytest.mark.slow


def static_axes_writer(module, path: Path, example: tuple, *, opset: int) -> Path:
    """torch.onnx without dynamic shapes: every axis is baked in at the trace's size."""
    import torch
    from lexiedge_emotion_av.onnx_export import INPUT_NAMES

    with torch.no_grad():
        program = torch.onnx.export(module, tuple(example), dynamo=True, input_names=list(INPUT_NAMES),
                                    output_names=["logits"], opset_version=opset)
    program.save(str(path))
    return path


def perturb_matrices(model, scale: float, keep: frozenset[str] = frozenset(), seed: int = 0) -> int:
    """Multiply every 2-D float initializer but ``keep`` by (1 + scale * noise); returns how many changed."""
    from onnx import numpy_helper

    rng = np.random.default_rng(seed)
    changed = 0
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.ndim == 2 and array.size >= 64 and init.name not in keep:
            noisy = array * (1 + scale * rng.standard_normal(array.shape)).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
            changed += 1
    return changed


def perturbed_writer(module, path: Path, example: tuple, *, opset: int) -> Path:
    """The model plugin's real export, then its learned weight matrices perturbed by 30% (the fixed
    buffers, such as the mel filters, stay: a negative mel energy would make NaN, not wrong numbers)."""
    import onnx
    from lexiedge_emotion_av.onnx_export import export_onnx

    export_onnx(module, path, example, opset=opset)
    model = onnx.load(str(path))
    assert perturb_matrices(model, 0.3, keep=frozenset(name for name, _ in module.named_buffers())) > 0
    onnx.save(model, str(path))
    return path


def nan_writer(module, path: Path, example: tuple, *, opset: int) -> Path:
    """The model plugin's real export with one weight of the classifier head set to NaN."""
    import onnx
    from lexiedge_emotion_av.onnx_export import export_onnx
    from onnx import numpy_helper

    export_onnx(module, path, example, opset=opset)
    model = onnx.load(str(path))
    head = list(module.state_dict())[-2]  # the last Linear's weight (its bias comes last)
    init = next(i for i in model.graph.initializer if i.name == head)
    array = numpy_helper.to_array(init).copy()
    array[0, 0] = np.nan
    init.CopyFrom(numpy_helper.from_array(array, init.name))
    onnx.save(model, str(path))
    return path


@pytest.fixture
def graph_writer(monkeypatch: pytest.MonkeyPatch):
    """Export the classifier with ``writer`` instead of the model plugin's exporter."""

    def use(writer) -> None:
        monkeypatch.setattr(lexiedge_onnx.classifier, "model_graph_writer", lambda plugin: writer)

    return use


def _export(run: Path, target: str, out: Path, *overrides: str, force: bool = False) -> None:
    export(ExportRequest(targets=(target,), run=run, out=out, overrides=overrides, force=force), Console(quiet=True))


def _assert_rejected(error: VerificationError, out: Path, kind: str) -> dict:
    """The error names the output and the kept directory; only <out>.failed/ exists next to <out>."""
    failed = out.parent / f"{out.name}.failed"
    message = str(error)
    assert error.output == "logits" and error.saved_path == failed
    assert f"{kind} for output 'logits'" in message and str(failed) in message and "\n" not in message
    assert not out.exists(), "nothing may be published at the artifact path"
    assert sorted(p.name for p in out.parent.iterdir()) == [failed.name], "no temp dirs left behind"
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["verification"]["passed"] is False and kind in manifest["verification"]["failure"]
    return manifest


def test_a_graph_specialised_to_its_trace_shape_fails_with_a_shape_error(av_run, graph_writer, tmp_path) -> None:
    graph_writer(static_axes_writer)
    out = tmp_path / "artifact"
    with pytest.raises(ShapeError) as caught:
        _export(av_run, "onnx", out)
    _assert_rejected(caught.value, out, "shape check failed")
    assert "batch 1" in str(caught.value) and "waveform" in str(caught.value), "which shape, which input"
    rejected = ort_session(out.parent / "artifact.failed" / "model.onnx")
    assert all(isinstance(dim, int) for i in rejected.get_inputs() for dim in i.shape), "the graph really is static"


def test_a_graph_whose_numbers_are_off_fails_with_an_atol_error(av_run, graph_writer, tmp_path, cli) -> None:
    graph_writer(perturbed_writer)
    out = tmp_path / "artifact"
    result = cli("export", "--run", str(av_run), "--target", "onnx", "--out", str(out))
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "values differ for output 'logits'" in line and "artifact.failed" in line
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["artifact.failed"]

    with pytest.raises(AtolError) as caught:  # the same, through the API: the typed error
        _export(av_run, "onnx", out)
    manifest = _assert_rejected(caught.value, out, "values differ")
    assert manifest["verification"]["validation"]["max_abs_diff"]["logits"] > 1e-4, "the numbers are kept"


def test_a_graph_whose_predictions_change_fails_with_an_agreement_error(av_run, graph_writer, tmp_path) -> None:
    graph_writer(perturbed_writer)
    out = tmp_path / "artifact"
    with pytest.raises(AgreementError) as caught:  # atol out of the way: top-1 agreement must catch it
        _export(av_run, "onnx", out, "models.emotion-av.export.options.onnx.atol=1e6")
    manifest = _assert_rejected(caught.value, out, "agreement too low")
    assert manifest["verification"]["validation"]["top1_agreement"] < 1.0


def test_a_graph_that_outputs_nan_fails_with_an_atol_error(av_run, graph_writer, tmp_path) -> None:
    graph_writer(nan_writer)  # NaN compares false with every threshold: it must be caught on its own
    out = tmp_path / "artifact"
    with pytest.raises(AtolError) as caught:
        _export(av_run, "onnx", out)
    _assert_rejected(caught.value, out, "values differ")
    assert "non-finite" in str(caught.value)


def test_a_failed_export_with_force_leaves_the_existing_artifact_untouched(av_run, av_artifact, graph_writer,
                                                                            tmp_path) -> None:
    out = tmp_path / "artifact"
    shutil.copytree(av_artifact("onnx").path, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    graph_writer(static_axes_writer)
    with pytest.raises(ShapeError):
        _export(av_run, "onnx", out, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact", "artifact.failed"]


def test_an_llm_whose_weights_are_off_fails_verification(lm_run, monkeypatch, tmp_path) -> None:
    import onnx

    real_build = lexiedge_onnx.exporters.build_genai_model

    def build_then_perturb(hf_dir, out_dir, **options):
        built = real_build(hf_dir, out_dir, **options)
        graph = out_dir / "model.onnx"
        model = onnx.load(str(graph))  # external weights (model.onnx.data) are read in
        assert perturb_matrices(model, 0.05) > 0
        (out_dir / "model.onnx.data").unlink(missing_ok=True)
        onnx.save(model, str(graph), save_as_external_data=True, location="model.onnx.data")
        return built

    monkeypatch.setattr(lexiedge_onnx.exporters, "build_genai_model", build_then_perturb)
    out = tmp_path / "artifact"
    with pytest.raises((AtolError, AgreementError)) as caught:
        _export(lm_run, "onnx", out)
    manifest = _assert_rejected(caught.value, out, caught.value.kind)
    assert max(manifest["verification"]["max_abs_diff"].values()) > 1e-4
