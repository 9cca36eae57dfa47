"""manifest.json of every artifact: what an app needs to run it, and what a reviewer needs to trust it.

Checked against the artifact itself (files re-hashed here, the signature read back from an ONNX
Runtime session), the run it came from, and the installed libraries.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
from pathlib import Path

import pytest
from export_helpers import AV_VARIANTS, LM_VARIANTS, ort_session, run_entry

pytestmark = pytest.mark.slow

ORT_TYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}
ALL = [("emotion-av", v) for v in AV_VARIANTS] + [("qwen-lora", v) for v in LM_VARIANTS]


@pytest.fixture
def artifact(request: pytest.FixtureRequest, av_artifact, lm_artifact):
    model, variant = request.param
    return (av_artifact if model == "emotion-av" else lm_artifact)(variant)


def _files_on_disk(directory: Path) -> dict[str, Path]:
    return {p.relative_to(directory).as_posix(): p for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("artifact", ALL, indirect=True, ids=[f"{m}-{v}" for m, v in ALL])
def test_every_file_is_listed_with_its_sha256_and_the_size_is_the_model_files(artifact) -> None:
    manifest = artifact.manifest
    on_disk = _files_on_disk(artifact.path)
    # every file, and only those: the manifest and the model card (README.md, rendered from it) are not listed
    assert set(manifest["files"]) == set(on_disk) - {"manifest.json", "README.md"}, "every file, and only those"
    for name, entry in manifest["files"].items():
        data = on_disk[name].read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}, name
    assert manifest["model_files"] and set(manifest["model_files"]) <= set(manifest["files"])
    assert manifest["size_bytes"] == sum(manifest["files"][name]["bytes"] for name in manifest["model_files"]) > 0


@pytest.mark.parametrize("artifact", ALL, indirect=True, ids=[f"{m}-{v}" for m, v in ALL])
def test_source_run_versions_and_verification_are_recorded(artifact) -> None:
    manifest = artifact.manifest
    assert manifest["format"] == "lexiedge-artifact" and manifest["target"] == artifact.target
    profile, entry = run_entry(artifact.run)
    assert manifest["model"] in profile.models and manifest["model_plugin"] == entry.model.plugin
    source = manifest["source"]
    assert source["run"] == str(artifact.run.resolve()) and source["profile"] == profile.name == "cpu"
    assert (artifact.run / source["checkpoint"] / "model.safetensors").is_file()
    packages = ["lexiedge", "torch", "onnx", "onnxruntime"]
    if manifest["task"] == "causal-lm":
        packages += ["transformers", "onnxruntime-genai"]
        assert Path(source["merged_model"]) == (artifact.run / "merged").resolve()
    for package in packages:
        assert manifest["versions"][package] == importlib.metadata.version(package), package
    report = manifest["verification"]  # its numbers are checked by the per-model tests
    assert report["passed"] is True and report["thresholds"] and report["reference"].startswith("pytorch fp32")


@pytest.mark.parametrize("artifact", ALL, indirect=True, ids=[f"{m}-{v}" for m, v in ALL])
def test_the_signature_and_dynamic_axes_are_the_graphs(artifact) -> None:
    manifest = artifact.manifest
    session = ort_session(artifact.path / manifest["runtime"]["graph"])
    signature = manifest["signature"]
    for side, values in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
        assert [v["name"] for v in signature[side]] == [v.name for v in values]
        for recorded, value in zip(signature[side], values):
            assert recorded["shape"] == list(value.shape) and ORT_TYPES[value.type] == recorded["dtype"], recorded

    axes = manifest["dynamic_axes"]
    if manifest["task"] == "causal-lm":
        assert set(axes["input_ids"]) == {"0", "1"} and set(axes["attention_mask"]) == {"0", "1"}
        pasts = [name for name in axes if name.startswith("past_key_values.")]
        assert pasts and all({"0", "2"} <= set(axes[name]) for name in pasts), "batch and past length"
        logits = next(v for v in signature["outputs"] if v["name"] == "logits")
        # onnx-int4 prunes the LM head to the last position by default (prune_lm_head): no sequence axis there
        pruned = (manifest.get("quantization") or {}).get("lm_head_positions") == "last"
        assert set(axes["logits"]) == ({"0"} if pruned else {"0", "1"}), axes["logits"]
        assert logits["shape"][2] == manifest["architecture"]["vocab_size"]
        if pruned:
            assert logits["shape"][1] == 1, "the pruned head's logits are of the last position only"
    else:
        assert axes["waveform"].keys() == {"0", "1"} and {"0", "1"} <= axes["frames"].keys()
        assert axes["audio_mask"].keys() == axes["video_mask"].keys() == {"0"}
        for output in ("logits", "probabilities"):
            recorded = next(v for v in signature["outputs"] if v["name"] == output)
            assert axes[output].keys() == {"0"} and recorded["shape"][1] == len(manifest["labels"])


@pytest.mark.parametrize("variant", AV_VARIANTS)
def test_a_classifier_manifest_has_its_labels_and_preprocessing(av_artifact, variant: str) -> None:
    from lexiedge_ravdess.labels import EMOTIONS

    artifact = av_artifact(variant)
    manifest = artifact.manifest
    assert manifest["labels"] == list(EMOTIONS)
    _, entry = run_entry(artifact.run)
    preprocessing = manifest["preprocessing"]
    assert preprocessing["data_plugin"] == entry.data.plugin == "ravdess"
    assert preprocessing["data_settings"] == entry.data.settings.model_dump(mode="json")
    assert {"sample_rate", "clip_seconds", "frames", "image_size"} <= preprocessing["data_settings"].keys()


@pytest.mark.parametrize("variant", LM_VARIANTS)
def test_an_llm_manifest_lists_its_tokenizer_files_and_stop_tokens(lm_artifact, variant: str) -> None:
    artifact = lm_artifact(variant)
    manifest = artifact.manifest
    tokenizer = manifest["tokenizer"]
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(tokenizer["files"])
    assert set(tokenizer["files"]) <= set(manifest["files"]), "tokenizer files are hashed like the model"
    assert tokenizer["chat_template"] in manifest["files"]
    generation = json.loads((artifact.run / "merged" / "generation_config.json").read_text())
    eos = generation["eos_token_id"]
    assert sorted(tokenizer["eos_token_ids"]) == sorted(eos if isinstance(eos, list) else [eos])
    genai = json.loads((artifact.path / manifest["runtime"]["config"]).read_text())
    assert genai["model"]["decoder"]["filename"] == manifest["runtime"]["graph"]


def test_a_changed_file_no_longer_matches_its_hash(av_artifact, tmp_path: Path) -> None:
    from lexiedge.export import verify_files

    copy = tmp_path / "artifact"
    shutil.copytree(av_artifact("onnx").path, copy)
    assert verify_files(copy) == []
    graph = copy / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    assert verify_files(copy) == ["model.onnx: sha256 mismatch"]
