"""Bad input to `lexiedge export`: one clear line on stderr, exit code 2, nothing written.

And --force: an existing artifact is replaced as a whole, with no temporary directory left beside it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lexiedge.export.card import CARD

pytestmark = pytest.mark.slow


def assert_refused(result, *phrases: str) -> str:
    line = result.stderr.strip()
    assert result.exit_code == 2, result.stderr
    assert line.startswith("error:") and "\n" not in line and "Traceback" not in result.stderr, line
    for phrase in phrases:
        assert phrase in line, f"{phrase!r} not in {line!r}"
    return line


def test_a_missing_run_is_refused(cli, tmp_path: Path) -> None:
    missing = tmp_path / "runs" / "nothing-here"
    assert_refused(cli("export", "--run", str(missing), "--target", "onnx", "--out", str(tmp_path / "art")),
                   str(missing), "no such run directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_run_without_a_checkpoint_is_refused(cli, av_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "interrupted-run"  # what training leaves when it dies before saving weights
    run.mkdir()
    for name in ("profile.yaml", "run.json"):
        shutil.copyfile(av_run / name, run / name)
    assert_refused(cli("export", "--run", str(run), "--target", "onnx", "--out", str(tmp_path / "art")),
                   str(run), "has no checkpoint")
    assert not (tmp_path / "art").exists()


def test_an_unknown_target_is_refused_listing_the_known_ones(cli, av_run: Path, tmp_path: Path) -> None:
    from lexiedge.plugin import get_host

    line = assert_refused(cli("export", "--run", str(av_run), "--target", "onnx-fp8", "--out", str(tmp_path / "a")),
                          "'onnx-fp8'")
    known = get_host().exporters.names()
    assert {"onnx", "onnx-int8", "onnx-int4", "ort-mobile"} <= set(known)
    assert ", ".join(sorted(known)) in line
    assert not (tmp_path / "a").exists()


def test_a_target_the_model_does_not_support_is_refused(cli, av_run: Path, tmp_path: Path) -> None:
    line = assert_refused(cli("export", "--run", str(av_run), "--target", "onnx-int4", "--out", str(tmp_path / "a")),
                          "'onnx-int4'", "'emotion-av'")
    assert "onnx, onnx-int8, ort-mobile" in line, "the targets that can export it"
    assert not (tmp_path / "a").exists()


def test_an_unknown_export_option_is_refused_naming_the_key(cli, av_run: Path, tmp_path: Path) -> None:
    assert_refused(cli("export", "--run", str(av_run), "--target", "onnx", "--out", str(tmp_path / "a"),
                       "--set", "models.emotion-av.export.options.onnx.atoll=1"),
                   "models.emotion-av.export.options.onnx.atoll", "atol")
    assert not (tmp_path / "a").exists()


def test_an_existing_output_is_refused_without_force_and_replaced_whole_with_it(cli, av_run: Path,
                                                                                 tmp_path: Path) -> None:
    out = tmp_path / "artifact"
    out.mkdir()  # an older artifact: its manifest and a file of it (--force replaces only artifact folders)
    (out / "manifest.json").write_text('{"format": "lexiedge-artifact"}')
    (out / "notes.txt").write_text("an older artifact")
    assert_refused(cli("export", "--run", str(av_run), "--target", "onnx", "--out", str(out)),
                   str(out), "exists", "--force")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt"], "refused before any write"

    result = cli("export", "--run", str(av_run), "--target", "onnx", "--out", str(out), "--force")
    assert result.exit_code == 0, result.stderr
    assert not (out / "notes.txt").exists(), "the old artifact is replaced, not merged into"
    manifest = json.loads((out / "manifest.json").read_text())
    # every file but the manifest and the model card (documentation, not listed) is the manifest's
    assert set(manifest["files"]) == {p.name for p in out.iterdir()} - {"manifest.json", CARD}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"], "no temp or old dirs beside it"


def test_an_output_that_is_a_file_or_the_run_itself_is_refused(cli, av_run: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "model.onnx"
    a_file.write_bytes(b"not a directory")
    assert_refused(cli("export", "--run", str(av_run), "--target", "onnx", "--out", str(a_file), "--force"),
                   str(a_file), "is a file")
    assert a_file.read_bytes() == b"not a directory"

    before = sorted(p.name for p in av_run.iterdir())
    for out in (av_run, av_run.parent):  # --force must never replace the run being exported
        assert_refused(cli("export", "--run", str(av_run), "--target", "onnx", "--out", str(out), "--force"),
                       str(av_run), "outside it")
    assert sorted(p.name for p in av_run.iterdir()) == before


def test_missing_verification_data_is_refused_up_front(cli, av_run: Path, tmp_path: Path) -> None:
    missing = tmp_path / "moved-data"
    assert_refused(cli("export", "--run", str(av_run), "--target", "onnx", "--out", str(tmp_path / "art"),
                       "--data", str(missing)), str(missing), "--data")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failure_half_way_leaves_nothing_behind(cli, av_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"  # a run whose recorded data has moved: found out only after the graph is traced
    shutil.copytree(av_run, run)
    info = json.loads((run / "run.json").read_text())
    info["data_path"] = str(tmp_path / "data-that-moved")
    (run / "run.json").write_text(json.dumps(info))
    out = tmp_path / "artifacts" / "av"
    result = cli("export", "--run", str(run), "--target", "onnx", "--out", str(out))
    line = result.stderr.strip()
    assert result.exit_code == 1 and "\n" not in line and "pass --data" in line, line
    assert not out.exists() and list(out.parent.iterdir()) == [], "no artifact, no temp dir, no .failed"


def test_exporting_an_unmerged_lora_run_plans_the_merge_as_its_own_step_and_reuses_it(cli, lm_run: Path,
                                                                                      tmp_path: Path) -> None:
    run = tmp_path / "run-lm"
    shutil.copytree(lm_run, run, ignore=shutil.ignore_patterns("merged"))  # trained, never merged
    quick = ("prompts=1", "new_tokens=4", "min_token_agreement=0", "min_decisive_share=0", "benchmark_tokens=0")
    sets = [arg for option in quick for arg in ("--set", f"models.qwen-lora.export.options.onnx-int4.{option}")]

    first = cli("export", "--run", str(run), "--target", "onnx-int4", "--out", str(tmp_path / "a"), *sets)
    assert first.exit_code == 0, first.stderr
    plan = next(line for line in first.stdout.splitlines() if line.startswith("steps:"))
    assert f"1. merge {run} -> {run / 'merged'};" in plan and "2. export qwen-lora" in plan, plan
    assert (run / "merged" / "config.json").is_file() and (run / "merged" / "merge.json").is_file()
    merged_at = (run / "merged" / "model.safetensors").stat().st_mtime_ns

    again = cli("export", "--run", str(run), "--target", "onnx-int4", "--out", str(tmp_path / "b"), *sets)
    assert again.exit_code == 0, again.stderr
    assert f"1. merge {run} -> {run / 'merged'} (done: reused);" in again.stdout
    assert (run / "merged" / "model.safetensors").stat().st_mtime_ns == merged_at, "the merge ran again"
