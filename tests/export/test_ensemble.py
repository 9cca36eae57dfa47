"""`lexiedge ensemble`: two real runs of different seeds, exported, combined into one graph that apps run
as one model and whose probabilities are the mean of the members' (checked here with our own ONNX Runtime
sessions of each member, on real clips of the runs' data and at shapes nobody traced).

The members: the session's small emotion-av run (tests/conftest.py: cpu profile, 2 steps, seed 0) and one
more of seed 1 on the same data, each exported to onnx, and to onnx-int8 for the int8 test (agreement
thresholds relaxed: 2 steps do not make decisions worth guarding; the ensemble's own check is not
relaxed). The ensembles are built once per module through the command a user types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cli_runner import lexiedge_ok
from export_helpers import AV_INPUTS, av_splits, ort_session, run_session

pytestmark = pytest.mark.slow

_AV = "models.emotion-av"
SMALL_EXPORT = [f"{_AV}.export.options.onnx.max_val_clips=4"]
SMALL_INT8_EXPORT = [
    f"{_AV}.export.options.onnx-int8.{option}"
    for option in ("max_val_clips=4", "min_top1=0", "min_decisive_share=0", "max_uar_drop=1")
]
MOBILE_EXPORT = [f"{_AV}.export.options.ort-mobile.max_val_clips=4"]
TOLERANCE = 1e-5  # |probability - the members' mean|: the same ops on the same inputs, float rounding only


def _sets(values: list[str]) -> list[str]:
    return [item for value in values for item in ("--set", value)]


@dataclass(frozen=True)
class Ensembles:
    data: Path
    runs: tuple[Path, Path]
    members: tuple[Path, Path]  # fp32 onnx
    int8_members: tuple[Path, Path]
    mobile: Path  # ort-mobile of the first run: a format that cannot be combined
    fp32: Path  # the ensemble of `members`
    int8: Path


@pytest.fixture(scope="module")
def ensembles(
    small_av_run: Path, small_av_artifact: Path, tmp_path_factory: pytest.TempPathFactory
) -> Ensembles:
    root = tmp_path_factory.mktemp("ensemble")
    data = Path(json.loads((small_av_run / "run.json").read_text())["data_path"])
    second = root / "run-seed1"
    lexiedge_ok(
        "train",
        "--profile",
        "cpu",
        "--model",
        "emotion-av",
        "--data",
        data,
        "--out",
        second,
        "--set",
        f"{_AV}.train.max_steps=2",
        "--set",
        f"{_AV}.train.seed=1",
    )
    onnx_second = root / "seed1-onnx"
    lexiedge_ok("export", "--run", second, "--target", "onnx", "--out", onnx_second, *_sets(SMALL_EXPORT))
    int8 = []
    for run in (small_av_run, second):
        out = root / f"{run.name}-int8"
        lexiedge_ok("export", "--run", run, "--target", "onnx-int8", "--out", out, *_sets(SMALL_INT8_EXPORT))
        int8.append(out)
    mobile = root / "seed0-ort-mobile"
    lexiedge_ok(
        "export", "--run", small_av_run, "--target", "ort-mobile", "--out", mobile, *_sets(MOBILE_EXPORT)
    )
    fp32, quantized = root / "ensemble-onnx", root / "ensemble-int8"
    lexiedge_ok("ensemble", small_av_artifact, onnx_second, "--out", fp32)
    lexiedge_ok("ensemble", *int8, "--out", quantized)
    return Ensembles(
        data,
        (small_av_run, second),
        (small_av_artifact, onnx_second),
        (int8[0], int8[1]),
        mobile,
        fp32,
        quantized,
    )


def _real_clips(run: Path, count: int = 8) -> dict[str, np.ndarray]:
    """The first ``count`` test clips of the run's data, as the graph's four inputs."""
    dataset = av_splits(run).test
    items = [dataset[index] for index in range(min(count, len(dataset)))]
    return {
        name: np.stack([np.asarray(item[name], np.float32) for item in items]).astype(np.float32)
        for name in AV_INPUTS
    }


def _other_shapes(clips: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Real clips at shapes the members were not traced at: one clip of 1.1 s and 1 frame; three clips with
    the audio repeated to 1.5x, 5 frames, the second without audio and the third without video."""
    one = {
        "waveform": clips["waveform"][:1, : int(1.1 * 16000)],
        "frames": clips["frames"][:1, :1],
        "audio_mask": clips["audio_mask"][:1],
        "video_mask": clips["video_mask"][:1],
    }
    waveform = np.concatenate(
        [clips["waveform"][:3], clips["waveform"][:3, : clips["waveform"].shape[1] // 2]], 1
    )
    frames = np.concatenate([clips["frames"][:3], clips["frames"][:3, :1]], 1)
    three = {
        "waveform": waveform.copy(),
        "frames": frames.copy(),
        "audio_mask": clips["audio_mask"][:3].copy(),
        "video_mask": clips["video_mask"][:3].copy(),
    }
    three["waveform"][1], three["audio_mask"][1] = 0.0, 0.0
    three["frames"][2], three["video_mask"][2] = 0.0, 0.0
    return [{k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()} for feeds in (one, three)]


def _check_is_the_mean(
    ensemble: Path, members: tuple[Path, ...], batches: list[dict[str, np.ndarray]]
) -> float:
    """Run the combined graph and each member's graph ourselves; return the largest |probability - mean|."""
    combined = ort_session(ensemble / "model.onnx")
    sessions = [ort_session(member / "model.onnx") for member in members]
    assert [i.name for i in combined.get_inputs()] == [i.name for i in sessions[0].get_inputs()]
    worst = 0.0
    for feeds in batches:
        got = run_session(combined, feeds)
        mean = np.mean([run_session(session, feeds)["probabilities"] for session in sessions], axis=0)
        assert got["probabilities"].shape == mean.shape == (len(feeds["waveform"]), mean.shape[1])
        worst = max(worst, float(np.abs(got["probabilities"] - mean).max()))
        assert (got["probabilities"].argmax(-1) == mean.argmax(-1)).all()
        assert np.isfinite(got["logits"]).all()
        assert np.abs(np.exp(got["logits"]) - mean).max() <= TOLERANCE  # logits = log(mean probability)
        shifted = np.exp(got["logits"] - got["logits"].max(-1, keepdims=True))
        assert np.abs(shifted / shifted.sum(-1, keepdims=True) - mean).max() <= TOLERANCE  # softmax(logits)
    return worst


def test_the_fp32_ensemble_outputs_the_mean_of_its_members(ensembles: Ensembles) -> None:
    clips = _real_clips(ensembles.runs[0])
    worst = _check_is_the_mean(ensembles.fp32, ensembles.members, [clips, *_other_shapes(clips)])
    assert worst <= TOLERANCE
    members = [ort_session(member / "model.onnx") for member in ensembles.members]
    a, b = (run_session(session, clips)["probabilities"] for session in members)
    assert np.abs(a - b).max() > 1e-3, "the two seeds must differ, or the mean proves nothing"


def test_the_int8_ensemble_outputs_the_mean_of_its_members(ensembles: Ensembles) -> None:
    clips = _real_clips(ensembles.runs[0])
    assert (
        _check_is_the_mean(ensembles.int8, ensembles.int8_members, [clips, *_other_shapes(clips)])
        <= TOLERANCE
    )
    manifest = json.loads((ensembles.int8 / "manifest.json").read_text())
    assert manifest["ensemble"]["precision"] == "int8" and manifest["target"] == "onnx-int8"


def test_the_manifest_records_the_members_and_the_verification(ensembles: Ensembles) -> None:
    from lexiedge.export.manifest import verify_files
    from lexiedge.runtime.artifact import sha256_file

    manifest = json.loads((ensembles.fp32 / "manifest.json").read_text())
    section = manifest["ensemble"]
    assert section["count"] == 2 and section["combine"] == "mean of class probabilities"
    assert [m["graph_sha256"] for m in section["members"]] == [
        sha256_file(member / "model.onnx") for member in ensembles.members
    ]
    assert [m["run"] for m in section["members"]] == [str(run.resolve()) for run in ensembles.runs]
    assert [m["seed"] for m in section["members"]] == [0, 1]
    assert verify_files(ensembles.fp32) == []
    assert manifest["size_bytes"] == (ensembles.fp32 / "model.onnx").stat().st_size
    assert manifest["model_files"] == ["model.onnx"] and manifest["runtime"]["graph"] == "model.onnx"
    first = json.loads((ensembles.members[0] / "manifest.json").read_text())
    for key in ("task", "labels", "preprocessing", "signature", "dynamic_axes", "target"):
        assert manifest[key] == first[key], key
    assert set(manifest["dynamic_axes"]["waveform"].values()) == {"batch", "samples"}
    verification = manifest["verification"]
    assert verification["passed"] is True
    assert 0 <= verification["max_abs_diff"]["probabilities"] <= TOLERANCE
    assert verification["top1_agreement"] == 1.0 and verification["clips"] == 8
    card = (ensembles.fp32 / "README.md").read_text()
    assert "seed ensemble of 2 members" in card and "## Ensemble" in card


def test_the_runtime_loads_and_runs_it_as_one_model(ensembles: Ensembles) -> None:
    import lexiedge_runtime

    clip = next(p for p in sorted(ensembles.data.rglob("*.mp4")))
    model = lexiedge_runtime.load(ensembles.fp32, "cpu")
    members = [lexiedge_runtime.load(member, "cpu") for member in ensembles.members]
    result = model.predict_file(clip)
    expected = np.mean(
        [[m.predict_file(clip).probabilities[label] for label in m.labels] for m in members], 0
    )
    got = np.array([result.probabilities[label] for label in model.labels])
    assert np.abs(got - expected).max() <= TOLERANCE
    assert result.label == model.labels[int(expected.argmax())]


def test_lexiedge_eval_scores_the_ensemble_artifact(ensembles: Ensembles, cli, tmp_path: Path) -> None:
    from lexiedge.metrics import classification_metrics, confusion_matrix

    result = cli(
        "eval",
        str(ensembles.fp32),
        "--data",
        str(ensembles.data),
        "--split",
        "test",
        "--json",
        "--out",
        str(tmp_path / "eval"),
    )
    assert result.exit_code == 0, result.stderr
    scored = json.loads(result.stdout)
    metrics = scored["results"][0]["metrics"]
    dataset = av_splits(ensembles.runs[0]).test
    items = [dataset[index] for index in range(len(dataset))]
    feeds = {name: np.stack([np.asarray(item[name], np.float32) for item in items]) for name in AV_INPUTS}
    truth = np.array([int(item["label"]) for item in items])
    sessions = [ort_session(member / "model.onnx") for member in ensembles.members]
    mean = np.mean([run_session(session, feeds)["probabilities"] for session in sessions], axis=0)
    expected = classification_metrics(confusion_matrix(truth, mean.argmax(-1), mean.shape[1]))
    assert metrics["samples"] == len(items)
    assert np.array_equal(scored["results"][0]["details"]["confusion"], expected["confusion"])
    assert metrics["uar"] == pytest.approx(expected["uar"]) and metrics["war"] == pytest.approx(
        expected["war"]
    )
    assert "seed ensemble of 2" in scored["results"][0]["name"], "its row is not taken for one model's"

    members = cli("eval", *map(str, ensembles.members), "--ensemble", "--data", str(ensembles.data),
                  "--split", "test", "--json", "--out", str(tmp_path / "members"))
    assert members.exit_code == 0, members.stderr
    rows = json.loads(members.stdout)["results"]
    assert [row["kind"] for row in rows] == ["artifact", "artifact", "ensemble"]
    assert rows[-1]["details"]["confusion"] == scored["results"][0]["details"]["confusion"], (
        "the members scored as an ensemble by `lexiedge eval --ensemble` agree with their combined graph"
    )


# --- bad input: one line, exit 2, nothing written --------------------------------------------------------


def _refused(result, out: Path, *phrases: str) -> None:
    line = result.stderr.strip()
    assert result.exit_code == 2, result.stderr
    assert line.startswith("error:") and "\n" not in line and "Traceback" not in result.stderr, line
    for phrase in phrases:
        assert phrase in line, f"{phrase!r} not in {line!r}"
    assert not out.exists() or not any(out.iterdir())
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], (
        "a temp folder was left"
    )


def test_one_artifact_is_refused(ensembles: Ensembles, cli, tmp_path: Path) -> None:
    out = tmp_path / "ens"
    _refused(
        cli("ensemble", str(ensembles.members[0]), "--out", str(out)), out, "needs 2 to 16 artifacts, got 1"
    )


def test_a_non_onnx_member_is_refused_naming_what_can_be_combined(
    ensembles: Ensembles, cli, tmp_path: Path
) -> None:
    out = tmp_path / "ens"
    _refused(
        cli("ensemble", str(ensembles.members[0]), str(ensembles.mobile), "--out", str(out)),
        out,
        str(ensembles.mobile),
        "ort-mobile",
        "only onnx and onnx-int8 artifacts",
    )
    _refused(
        cli("ensemble", str(ensembles.members[0]), str(ensembles.data), "--out", str(out)),
        out,
        str(ensembles.data),
        "no manifest.json",
    )


def test_mismatched_members_are_refused(ensembles: Ensembles, cli, tmp_path: Path) -> None:
    out = tmp_path / "ens"
    _refused(
        cli("ensemble", str(ensembles.members[0]), str(ensembles.int8_members[1]), "--out", str(out)),
        out,
        "int8 vs fp32",
    )
    _refused(
        cli("ensemble", str(ensembles.members[0]), str(ensembles.members[0]), "--out", str(out)),
        out,
        "given twice",
    )
    # a real artifact whose manifest says other labels, then another decoding (its graph's hash still holds)
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "model.onnx").write_bytes((ensembles.members[1] / "model.onnx").read_bytes())
    manifest = json.loads((ensembles.members[1] / "manifest.json").read_text())
    labels = manifest["labels"]
    manifest["labels"] = list(reversed(labels))
    (changed / "manifest.json").write_text(json.dumps(manifest))
    _refused(cli("ensemble", str(ensembles.members[0]), str(changed), "--out", str(out)), out, "in labels")
    manifest["labels"] = labels
    manifest["preprocessing"]["data_settings"]["face_crop"] = False  # trained on whole frames, not faces
    (changed / "manifest.json").write_text(json.dumps(manifest))
    _refused(
        cli("ensemble", str(ensembles.members[0]), str(changed), "--out", str(out)),
        out,
        "preprocessing.data_settings.face_crop (False vs True)",
    )


def test_a_non_empty_out_is_refused_and_left_alone(ensembles: Ensembles, cli, tmp_path: Path) -> None:
    out = tmp_path / "ens"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = cli("ensemble", *map(str, ensembles.members), "--out", str(out))
    assert result.exit_code == 2 and "exists and is not empty" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


def test_lexiedge_bench_runs_the_ensemble_beside_a_member(ensembles: Ensembles, tmp_path: Path) -> None:
    """Behaviour only (no timing compared): both rows measured, the ensemble twice the member's size, and
    the torch row says why an ensemble listed first has none."""
    import subprocess
    import sys

    out = tmp_path / "formats"
    fast = ["--warmup", "1", "--iterations", "2", "--rounds", "2", "--threads", "1"]
    command = [sys.executable, "-m", "lexiedge", "bench", "--all-formats", str(ensembles.fp32),
               str(ensembles.members[0]), *fast, "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((out / "formats.json").read_text())["rows"]
    torch_row = next(row for row in rows if row["backend"] == "torch")
    assert torch_row["status"] == "not available" and "seed ensemble has no one source model" in torch_row["note"]
    measured = {row["artifact"]: row for row in rows if row["status"] == "measured"}
    ensemble, member = measured[str(ensembles.fp32)], measured[str(ensembles.members[0])]
    assert ensemble["result"]["latency_ms"]["p50"] > 0 and member["result"]["latency_ms"]["p50"] > 0
    assert 1.9 < ensemble["size_bytes"] / member["size_bytes"] < 2.1
    assert ensemble["ensemble_of"] == 2 and ensemble["max_abs_diff_vs_eager"] is None, (
        "an ensemble's logits are not one model's: not compared with the eager row"
    )
