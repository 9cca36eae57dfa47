"""An artifact never reaches outside its directory, an unverified one is refused, bad manifest values are one line.

Every case starts from a real artifact (the `onnx` exporter's output for the fault model) and changes
one thing the way a tampered or mistaken copy would; the runtime and `lexiedge infer` must refuse it
before any file is opened, naming the manifest entry and never anything the entry points at.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import run_process

from lexiedge.runtime import (
    ArtifactIntegrityError,
    ManifestError,
    UnverifiedArtifactError,
    UnverifiedArtifactWarning,
    load,
)


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def _write_manifest(directory: Path, manifest: dict) -> None:
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _outside_file(tmp_path: Path, content: bytes = b"secret outside the artifact\n") -> Path:
    outside = tmp_path / "outside" / "evil.onnx"
    outside.parent.mkdir(exist_ok=True)
    outside.write_bytes(content)
    return outside


def _clip() -> dict:
    """One clip as the fault model reads it: 0.5 s at 1 kHz, two 8x8 frames."""
    rng = np.random.default_rng(0)
    return {"waveform": (0.1 * rng.standard_normal(500)).astype(np.float32),
            "frames": rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32), "sample_rate": 1000}


def test_the_real_artifact_loads_and_predicts(artifact):
    """The baseline every refusal below changes one thing of: it loads, and it is confined and verified."""
    model = load(artifact, "cpu")
    assert model.predict(**_clip()).label in model.labels


@pytest.mark.parametrize("name", ["../outside/evil.onnx", "/etc/passwd", "sub/../../outside/evil.onnx", "./model.onnx",
                                  "C:/evil.onnx", "sub\\..\\evil.onnx"])
def test_a_graph_path_leaving_the_artifact_is_refused_before_anything_is_opened(artifact_copy, tmp_path, cli, name):
    outside = _outside_file(tmp_path)
    manifest = _manifest(artifact_copy)
    manifest["runtime"]["graph"] = name
    manifest["files"][name] = {"sha256": hashlib.sha256(outside.read_bytes()).hexdigest()}  # even with its true hash
    _write_manifest(artifact_copy, manifest)

    with pytest.raises(ManifestError) as caught:
        load(artifact_copy, "cpu")
    assert f"files[{name!r}]" in str(caught.value) and "\n" not in str(caught.value)
    result = cli("infer", str(artifact_copy), str(tmp_path / "clip.npz"))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "manifest.json: files[" in result.stderr and "Traceback" not in result.stderr


def test_a_file_entry_outside_with_a_wrong_hash_never_reveals_the_outside_file(artifact_copy, tmp_path):
    """The reported fault: the refusal printed the sha256 prefix of ../../../../etc/shadow."""
    outside = _outside_file(tmp_path, b"root:$6$hash:19000:0:99999:7:::\n")
    entry = os.path.relpath(outside, artifact_copy)
    manifest = _manifest(artifact_copy)
    manifest["files"][entry] = {"sha256": "0" * 64}
    _write_manifest(artifact_copy, manifest)
    with pytest.raises(ManifestError) as caught:
        load(artifact_copy, "cpu")
    message = str(caught.value)
    assert repr(entry) in message and "inside" in message
    assert hashlib.sha256(outside.read_bytes()).hexdigest()[:8] not in message, "nothing about the outside file"


def test_a_symlinked_graph_is_refused_even_when_its_target_matches_the_hash(artifact_copy, tmp_path):
    outside = tmp_path / "outside-model.onnx"
    shutil.move(artifact_copy / "model.onnx", outside)
    (artifact_copy / "model.onnx").symlink_to(outside)  # same bytes: the hash would match
    with pytest.raises(ArtifactIntegrityError) as caught:
        load(artifact_copy, "cpu")
    assert caught.value.problems == [
        "model.onnx: a symbolic link, refused (copy the file itself into the artifact)"]


def test_a_symlinked_manifest_is_refused(artifact_copy, tmp_path):
    real = tmp_path / "elsewhere.json"
    shutil.move(artifact_copy / "manifest.json", real)
    (artifact_copy / "manifest.json").symlink_to(real)
    with pytest.raises(Exception, match="manifest.json is a symbolic link"):
        load(artifact_copy, "cpu")


def test_a_symlinked_folder_on_the_way_to_a_file_is_refused(artifact_copy, tmp_path):
    (tmp_path / "real-sub").mkdir()
    shutil.move(artifact_copy / "model.onnx", tmp_path / "real-sub" / "model.onnx")
    (artifact_copy / "sub").symlink_to(tmp_path / "real-sub")
    manifest = _manifest(artifact_copy)
    manifest["files"]["sub/model.onnx"] = manifest["files"].pop("model.onnx")
    manifest["runtime"]["graph"] = "sub/model.onnx"
    _write_manifest(artifact_copy, manifest)
    with pytest.raises(ArtifactIntegrityError, match=r"sub/ \(on the way to sub/model.onnx\): a symbolic link"):
        load(artifact_copy, "cpu")


def test_an_unlisted_link_inside_the_artifact_is_refused_too(artifact_copy, tmp_path):
    """A graph names its external data files itself; a link beside it must not lead ONNX Runtime outside."""
    (artifact_copy / "model.onnx.data").symlink_to(_outside_file(tmp_path))
    with pytest.raises(ArtifactIntegrityError) as caught:
        load(artifact_copy, "cpu")
    assert caught.value.problems == ["model.onnx.data: a symbolic link inside the artifact, refused (remove it)"]


def test_the_artifact_directory_itself_may_be_a_link(artifact, tmp_path):
    """artifacts/current -> v3 is how apps switch versions; only what is inside must be real files."""
    (tmp_path / "current").symlink_to(artifact, target_is_directory=True)
    assert load(tmp_path / "current", "cpu").labels


@pytest.fixture(scope="module")
def failed_export(trained_run, fault_root, fault_host) -> Path:
    """A real `<out>.failed/` folder: the exporter's verification with an impossible tolerance."""
    from lexiedge.cli import main
    from lexiedge.plugin import set_host

    set_host(fault_host)  # module fixtures run before the per-test one that registers the fault plugins

    out = fault_root / "strict"
    code = main(["export", "--run", str(trained_run), "--target", "onnx", "--out", str(out),
                 "--set", "models.fault.export.options.onnx.atol=1e-12"])
    assert code == 1 and not out.exists()
    return fault_root / "strict.failed"


def test_an_artifact_that_failed_verification_is_refused_unless_asked_for(failed_export, tmp_path, cli):
    assert _manifest(failed_export)["verification"]["passed"] is False
    with pytest.raises(UnverifiedArtifactError, match="verification failed .*values differ.*allow_unverified=True"):
        load(failed_export, "cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load(failed_export, "cpu", allow_unverified=True)
    assert [type(w.message) for w in caught] == [UnverifiedArtifactWarning]
    assert model.predict(**_clip()).label in model.labels

    clip = tmp_path / "clip.npz"
    np.savez(clip, **_clip())
    refused = cli("infer", str(failed_export), str(clip))
    assert refused.exit_code == 2 and "--allow-unverified" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    allowed = cli("infer", str(failed_export), str(clip), "--allow-unverified")
    assert allowed.exit_code == 0, allowed.stderr
    assert allowed.stderr.strip().startswith("warning:") and "unverified" in allowed.stderr
    assert "class_" in allowed.stdout


def test_an_artifact_without_a_recorded_verification_is_refused(artifact_copy):
    manifest = _manifest(artifact_copy)
    del manifest["verification"]
    _write_manifest(artifact_copy, manifest)
    with pytest.raises(UnverifiedArtifactError, match="was never recorded"):
        load(artifact_copy, "cpu")


@pytest.mark.parametrize(("change", "key"), [
    (lambda m: m["preprocessing"]["data_settings"].update(sample_rate=-5), "preprocessing.data_settings.sample_rate"),
    (lambda m: m["preprocessing"]["data_settings"].update(sample_rate="16k"), "preprocessing.data_settings.sample_rate"),
    (lambda m: m["preprocessing"]["data_settings"].update(clip_seconds=float("nan")),
     "preprocessing.data_settings.clip_seconds"),
    (lambda m: m["preprocessing"]["data_settings"].update(image_size=0), "preprocessing.data_settings.image_size"),
    (lambda m: m["preprocessing"]["data_settings"].update(frames=True), "preprocessing.data_settings.frames"),
    (lambda m: m["preprocessing"]["data_settings"].update(modalities=["smell"]), "preprocessing.data_settings.modalities"),
    (lambda m: m["preprocessing"].update(max_input_seconds=-1), "preprocessing.max_input_seconds"),
    (lambda m: m.update(labels="class-0"), "labels"),
    (lambda m: m.update(labels=["a", "a", "b"]), "labels"),
    (lambda m: m["verification"].update(passed="yes"), "verification.passed"),
    (lambda m: m["files"]["model.onnx"].update(sha256="not-a-hash"), "files['model.onnx'].sha256"),
    (lambda m: m["files"]["model.onnx"].update(bytes=-1), "files['model.onnx'].bytes"),
    (lambda m: m["runtime"].update(graph="other.onnx"), "runtime.graph"),
    (lambda m: m["signature"]["inputs"][0].update(shape="batch"), "signature.inputs[0].shape"),
    (lambda m: m.update(size_bytes=-3), "size_bytes"),
    (lambda m: m.update(task=7), "task"),
])
def test_a_bad_manifest_value_is_one_line_naming_the_key(artifact_copy, tmp_path, cli, change, key):
    manifest = _manifest(artifact_copy)
    change(manifest)
    _write_manifest(artifact_copy, manifest)
    with pytest.raises(ManifestError) as caught:
        load(artifact_copy, "cpu")
    assert caught.value.key == key and f"manifest.json: {key}: " in str(caught.value)
    result = cli("infer", str(artifact_copy), str(tmp_path / "clip.npz"))  # refused before the file is looked at
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert key in result.stderr and "Traceback" not in result.stderr and "pydantic" not in result.stderr


def test_a_negative_sample_rate_through_infer_in_a_real_process_is_one_line(artifact_copy, tmp_path):
    """The reported fault: it was a pydantic traceback from the data plugin."""
    manifest = _manifest(artifact_copy)
    manifest["preprocessing"]["data_settings"]["sample_rate"] = -5
    _write_manifest(artifact_copy, manifest)
    clip = tmp_path / "clip.npz"
    np.savez(clip, **_clip())
    result = run_process("infer", artifact_copy, clip)
    assert result.code == 2 and result.lines == [
        f"error: {artifact_copy}: manifest.json: preprocessing.data_settings.sample_rate: expected a whole number "
        "from 1000 to 384000, got -5"]


def test_keys_the_runtime_does_not_read_are_left_alone(artifact_copy):
    """Exporters add verification numbers freely (decisive and near-tie counts, task-metric deltas)."""
    manifest = _manifest(artifact_copy)
    manifest["verification"].update(decisive_clips=20, near_ties=4, task_metric_delta={"uar": -0.004})
    manifest["something_new"] = {"any": ["thing"]}
    _write_manifest(artifact_copy, manifest)
    assert load(artifact_copy, "cpu").labels == ["class_0", "class_1", "class_2"]


def test_infer_on_a_directory_says_it_is_a_directory(artifact, tmp_path, cli):
    clips = tmp_path / "clips"
    clips.mkdir()
    np.savez(clips / "one.npz", **_clip())
    result = cli("infer", str(artifact), str(clips), str(clips / "one.npz"))
    assert result.exit_code == 1
    assert f"skipped {clips} is a directory; pass the video/audio files in it" in result.stderr
    assert "no such file" not in result.stderr and "one.npz" in result.stdout, "the real file is still classified"
    not_a_dir = cli("infer", str(artifact / "manifest.json"), str(clips / "one.npz"))
    assert not_a_dir.exit_code == 2 and "is a file; expected an artifact directory" in not_a_dir.stderr
