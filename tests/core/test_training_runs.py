"""`lexiedge train` / `merge` through the command line: run directories, --data forms, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lexiedge.errors import UsageError
from lexiedge.training_runs import parse_data_args
from lexiedge.rundir import load_run_profile

TINY_QWEN = [
    "--set", "models.qwen-lora.train.max_steps=3",
    "--set", "models.qwen-lora.train.checkpoint_every=2",
    "--set", "models.qwen-lora.data.max_examples=48",
]


def test_data_arguments(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    both = parse_data_args([str(tmp_path / "a")], ["emotion-av", "qwen-lora"])
    assert both == {"emotion-av": tmp_path / "a", "qwen-lora": tmp_path / "a"}
    one = parse_data_args([f"emotion-av={tmp_path / 'a'}"], ["emotion-av", "qwen-lora"])
    assert one == {"emotion-av": tmp_path / "a", "qwen-lora": None}
    with pytest.raises(UsageError, match="does not exist"):
        parse_data_args([str(tmp_path / "missing")], ["emotion-av"])
    with pytest.raises(UsageError, match="not a model being trained"):
        parse_data_args(["gpt=x"], ["emotion-av"])


@pytest.mark.slow
def test_train_writes_a_run_directory_that_merge_reads(tmp_path: Path, cli) -> None:
    run = tmp_path / "run"
    result = cli("train", "--profile", "cpu", "--model", "qwen-lora", "--out", str(run), *TINY_QWEN)
    assert result.exit_code == 0, result.stderr
    profile, key = load_run_profile(run)
    assert key == "qwen-lora" and list(profile.models) == ["qwen-lora"]
    recorded = yaml.safe_load((run / "profile.yaml").read_text())
    assert recorded["models"]["qwen-lora"]["train"]["max_steps"] == 3  # --set is recorded
    assert json.loads((run / "run.json").read_text())["status"] == "completed"

    again = cli("train", "--profile", "cpu", "--model", "qwen-lora", "--out", str(run), *TINY_QWEN)
    assert again.exit_code == 2 and "exists and is not empty" in again.stderr

    merged = cli("merge", str(run), "--out", str(tmp_path / "merged"))
    assert merged.exit_code == 0, merged.stderr
    assert (tmp_path / "merged" / "config.json").is_file()


def test_merge_refuses_a_classifier_run(tmp_path: Path, cli) -> None:
    from lexiedge import atomic
    from lexiedge.training_runs import single_model_profile
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    profile = single_model_profile(load_profile("cpu", host=get_host()), "emotion-av")
    atomic.write_text(tmp_path / "profile.yaml", profile.to_yaml())
    result = cli("merge", str(tmp_path))
    assert result.exit_code == 2 and "nothing to merge" in result.stderr


def test_resume_without_a_run_says_so(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("train", "--profile", "cpu", "--model", "qwen-lora", "--resume")
    assert result.exit_code == 2 and "no run of 'qwen-lora'" in result.stderr
