"""The model card (README.md) `lexiedge export` writes in every artifact folder, from its manifest.

Checked against the manifest of real exports: the card exists for every target, states the manifest's
own numbers (verification, size, labels, training), re-rendering it from the manifest gives the same
text, and the runtime loads the artifact with the card beside it (it is not a listed file).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from export_helpers import AV_VARIANTS, LM_VARIANTS

from lexiedge.export.card import CARD, render_card
from lexiedge.export.report import human_size

pytestmark = pytest.mark.slow

ALL = [("emotion-av", v) for v in AV_VARIANTS] + [("qwen-lora", v) for v in LM_VARIANTS]


@pytest.fixture
def artifact(request: pytest.FixtureRequest, av_artifact, lm_artifact):
    model, variant = request.param
    return (av_artifact if model == "emotion-av" else lm_artifact)(variant)


def assert_card_states_the_manifest(directory: Path, manifest: dict) -> str:
    """The card of ``directory``: present, re-rendered identically, with the manifest's real numbers."""
    card = (directory / CARD).read_text(encoding="utf-8")
    assert card == render_card(manifest), "the card is exactly what the manifest renders to"
    assert f"`{manifest['target']}` artifact" in card and manifest["task"] in card
    assert human_size(manifest["size_bytes"]) in card
    report = manifest["verification"]
    numbers = report.get("validation", report)
    assert "**passed**" in card
    for name, value in numbers.get("max_abs_diff", {}).items():
        assert f"| max \\|{name} difference\\| | {value:.3g} |" in card
    metric = numbers.get("task_metric")
    if metric and isinstance(metric.get("artifact"), (int, float)):
        assert f"{metric['pytorch']:.4f} -> {metric['artifact']:.4f} ({metric['delta']:+.4f})" in card
    for label in manifest.get("labels") or []:
        assert f"`{label}`" in card
    training = manifest["source"]["training"]
    assert f"- profile: `{manifest['source']['profile']}`" in card
    assert f"- seed: {training['seed']}" in card and training["trainer"] in card
    for name, entry in manifest["files"].items():
        assert f"| `{name}` | {entry['bytes']} |" in card
    assert "import lexiedge_runtime" in card
    return card


@pytest.mark.parametrize("artifact", ALL, indirect=True, ids=[f"{m}-{v}" for m, v in ALL])
def test_every_artifact_has_a_card_stating_its_manifest(artifact) -> None:
    card = assert_card_states_the_manifest(artifact.path, artifact.manifest)
    if artifact.manifest["task"] == "av-classification" and artifact.target != "ort-mobile":
        assert "loadClassifier" in card  # runtime-js runs .onnx classifiers
    else:
        assert "runtime-js runs `.onnx` classifier artifacts only" in card
    assert "Android / iOS: ONNX Runtime" in card


def test_the_runtime_loads_an_artifact_with_its_card_and_ignores_edits_to_it(av_artifact, tmp_path) -> None:
    import shutil

    import lexiedge_runtime

    copy = tmp_path / "artifact"
    shutil.copytree(av_artifact("onnx").path, copy)
    (copy / CARD).write_text("# my notes\n", encoding="utf-8")  # documentation: not hashed, never refused
    model = lexiedge_runtime.load(copy, "cpu", threads=1)
    assert model.labels == av_artifact("onnx").manifest["labels"]
