"""--resume trains what the run recorded: a changed setting or other data is refused (each change listed, old ->
new) unless --allow-changes, more epochs extend a run, and a finished run says so instead of training nothing."""

from __future__ import annotations

import json
from pathlib import Path

import fault_plugins
import yaml

from lexiedge.rundir import LOCK_FILE

LR = "models.fault.train.lr"


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != LOCK_FILE}


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _resume(cli, profile: Path, run: Path, *extra: str):
    return cli("train", "--profile", str(profile), "--out", str(run), "--resume", *extra)


def test_a_changed_setting_is_refused_with_each_change_listed(interrupted_copy, profile_path, cli):
    before = _snapshot(interrupted_copy)
    result = _resume(cli, profile_path, interrupted_copy, "--set", f"{LR}=0.5", "--set", "models.fault.train.batch_size=4")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert (f"{interrupted_copy}: --resume asks for settings this run was not trained with: "
            "models.fault.train.batch_size: 8 -> 4; models.fault.train.lr: 0.05 -> 0.5. ") in line
    assert "--allow-changes" in line
    assert _snapshot(interrupted_copy) == before, "nothing written, nothing ignored silently"


def test_a_profile_file_edited_since_the_run_started_is_a_change_too(interrupted_copy, tmp_path, cli):
    edited = fault_plugins.write_profile(tmp_path / "edited.yaml", grad_clip=0.5)
    result = _resume(cli, edited, interrupted_copy)
    assert result.exit_code == 2 and "models.fault.train.grad_clip: 1.0 -> 0.5" in result.stderr


def test_other_data_is_refused_and_run_json_keeps_the_recorded_data(interrupted_copy, profile_path, tmp_path, cli):
    other = tmp_path / "other-data.txt"
    other.write_text("7\n")
    before = _snapshot(interrupted_copy)
    result = _resume(cli, profile_path, interrupted_copy, "--data", str(other))
    assert result.exit_code == 2 and f"data: None -> {str(other)!r}" in result.stderr
    assert _snapshot(interrupted_copy) == before


def test_allow_changes_continues_with_the_new_settings_and_records_them(interrupted_copy, profile_path, cli):
    result = _resume(cli, profile_path, interrupted_copy, "--allow-changes", "--set", f"{LR}=0.02")
    assert result.exit_code == 0, result.stderr
    assert f"resuming with a change: {LR}: 0.05 -> 0.02" in result.stdout
    info = json.loads((interrupted_copy / "run.json").read_text())
    assert info["status"] == "completed" and len(info["changes"]) == 1
    assert info["changes"][0]["at_step"] == 9 and info["changes"][0]["changes"] == {LR: [0.05, 0.02]}
    recorded = yaml.safe_load((interrupted_copy / "profile.yaml").read_text())
    assert recorded["models"]["fault"]["train"]["lr"] == 0.02, "later stages rebuild the run from profile.yaml"
    records = _records(interrupted_copy)
    events = [i for i, r in enumerate(records) if r.get("event") == "changes"]
    assert len(events) == 1 and records[events[0]] == {"event": "changes", "step": 9, "changes": {LR: [0.05, 0.02]}}
    assert records[events[0] - 1]["step"] == 9 and records[events[0] + 1]["step"] == 10, "logged where it applied"
    assert [r["step"] for r in records if "train/loss" in r and "event" not in r] == list(range(1, 13)), "every step logged once"


def test_more_epochs_extend_a_finished_run_without_allow_changes(run_copy, profile_path, cli):
    result = _resume(cli, profile_path, run_copy, "--set", "models.fault.train.epochs=3")
    assert result.exit_code == 0, result.stderr
    assert "resumed from step-00000012" in result.stdout
    info = json.loads((run_copy / "run.json").read_text())
    assert (info["status"], info["step"], info["epoch"], info["total_steps"]) == ("completed", 18, 3, 18)
    assert info["changes"][0]["changes"] == {"models.fault.train.epochs": [2, 3]}
    assert [r["step"] for r in _records(run_copy) if "train/loss" in r and "event" not in r] == list(range(1, 19))
    again = _resume(cli, profile_path, run_copy, "--set", "models.fault.train.epochs=3")
    assert again.exit_code == 0 and "already finished at step 18" in again.stdout


def test_fewer_epochs_than_recorded_is_a_change_that_needs_permission(run_copy, profile_path, cli):
    result = _resume(cli, profile_path, run_copy, "--set", "models.fault.train.epochs=1")
    assert result.exit_code == 2 and "models.fault.train.epochs: 2 -> 1" in result.stderr


def test_resuming_a_finished_run_says_so_and_touches_nothing(run_copy, profile_path, cli):
    before = _snapshot(run_copy)
    result = _resume(cli, profile_path, run_copy)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        f"fault: {run_copy} already finished at step 12; nothing to resume (to train longer: --resume --set "
        "models.fault.train.epochs=N with N above 2)"]
    assert "samples/s" not in result.stdout and "nan" not in result.stdout
    assert _snapshot(run_copy) == before


def test_a_resume_without_data_keeps_the_recorded_data(profile_path, tmp_path, cli):
    """The sibling of the reported fault: a resume without --data wrote data_path: null into run.json."""
    data = tmp_path / "data.txt"
    data.write_text("3\n")
    run = tmp_path / "run"
    assert cli("train", "--profile", str(profile_path), "--out", str(run), "--data", str(data)).exit_code == 0
    recorded = json.loads((run / "run.json").read_text())["data_path"]
    assert recorded == str(data.resolve())
    result = _resume(cli, profile_path, run, "--set", "models.fault.train.epochs=3")
    assert result.exit_code == 0, result.stderr
    assert json.loads((run / "run.json").read_text())["data_path"] == recorded
