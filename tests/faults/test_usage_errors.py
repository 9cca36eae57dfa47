"""Every usage mistake is click's usage message or one line: exit 2 (1 for a full disk), no traceback, nothing
half-written left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lexiedge.train import checkpoint as ckpt


def _lexiedge_process(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "lexiedge.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize(("args", "error"), [
    (["trian"], "Error: No such command 'trian'. Did you mean 'train'?"),
    (["train", "--bogus"], "Error: No such option: --bogus"),
    (["train"], "Error: Missing option '--profile' / '-p'."),
    (["export", "--target"], "Error: Option '--target' requires an argument."),
])
def test_a_usage_mistake_prints_click_s_usage_message_and_exits_2(args, error):
    result = _lexiedge_process(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(error)
    assert len(result.stderr.strip().splitlines()) <= 4, result.stderr  # at most usage, hint, blank, error


def test_a_bare_lexiedge_prints_the_help_without_a_traceback():
    result = _lexiedge_process()
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert "Usage: " in result.stdout + result.stderr and "train" in result.stdout + result.stderr


def test_out_at_an_existing_file_is_one_line_and_the_file_is_untouched(profile_path, tmp_path, cli):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine\n")
    for args in (["train", "--profile", str(profile_path), "--out", str(existing)],
                 ["train", "--profile", str(profile_path), "--out", str(existing / "run")],
                 ["bench", str(tmp_path), "--out", str(existing)],
                 ["demo", "--out", str(existing)]):
        result = cli(*args)
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert str(existing) in result.stderr and "Traceback" not in result.stderr
    assert existing.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_profile_that_is_not_utf8_names_the_file(tmp_path, cli):
    profile = tmp_path / "latin1.yaml"
    profile.write_bytes("name: caf\u00e9\ndevice: {kind: cpu, memory_gb: 1}\n".encode("latin-1"))
    result = cli("train", "--profile", str(profile))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {profile}: not UTF-8 text (byte 9); save the profile as UTF-8 YAML"


TORCH_DISK_FULL = ("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: "
                   "file write failed")


def test_a_full_disk_while_checkpointing_is_one_line_and_leaves_no_partial_checkpoint(profile_path, tmp_path, cli,
                                                                                       monkeypatch):
    """torch.save reports a full disk as a RuntimeError (what it raised on a real full disk, verbatim)."""
    real_save = ckpt.torch.save
    saves = []

    def disk_fills_up(obj, handle, *args, **kwargs):
        saves.append(handle.name)
        if len(saves) == 2:  # the second checkpoint (step 6) finds the disk full
            raise RuntimeError(TORCH_DISK_FULL)
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", disk_fills_up)
    run = tmp_path / "run"
    result = cli("train", "--profile", str(profile_path), "--out", str(run))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no space left on the disk of {run / 'checkpoints'} while writing checkpoint step-00000006: the "
        "partial checkpoint was removed and the earlier ones are intact; free some space and --resume"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000003"], "no temp directory"
    assert json.loads((run / "run.json").read_text())["status"] == "failed"

    monkeypatch.undo()  # space freed: the run resumes from the intact checkpoint
    resumed = cli("train", "--profile", str(profile_path), "--out", str(run), "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "resumed from step-00000003" in resumed.stdout
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_allow_changes_without_resume_is_a_usage_error(profile_path, tmp_path, cli):
    result = cli("train", "--profile", str(profile_path), "--out", str(tmp_path / "run"), "--allow-changes")
    assert result.exit_code == 2 and "--allow-changes only applies to --resume" in result.stderr
    assert not (tmp_path / "run").exists()
