"""A `train` refused before training starts leaves no run folder to be mistaken for the newest run.

Issue 31, item 8: `train` on a data folder with no usable clip was refused (by the data plugin, once
the run folder and its profile.yaml existed) and left `runs/<profile>/<model>/<time>/` behind, which
`export --profile` and `--resume` then picked as the newest run ("has no checkpoint"). Real commands,
the real ravdess plugin, an empty data folder.
"""

from __future__ import annotations

import contextlib

import shutil

from lexiedge.rundir import PROFILE_YAML, RUNS_DIR, newest_run

REFUSAL = "no usable RAVDESS clips"


def test_a_refused_train_removes_the_folder_it_made_and_the_older_run_stays_newest(tmp_path, cli, monkeypatch,
                                                                                  trained_run):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    result = cli("train", "--profile", "cpu", "--model", "emotion-av", "--data", "empty")
    assert result.exit_code == 2 and REFUSAL in result.stderr
    assert not RUNS_DIR.exists(), "nothing under runs/: not even the folders made for the run"

    older = RUNS_DIR / "cpu" / "emotion-av" / "20260101-000000"  # a finished run (its files: the fault suite's)
    shutil.copytree(trained_run, older)
    (older / "run.lock").unlink()
    result = cli("train", "--profile", "cpu", "--model", "emotion-av", "--data", "empty")
    assert result.exit_code == 2 and REFUSAL in result.stderr
    assert [p.name for p in older.parent.iterdir()] == [older.name]
    assert newest_run("cpu", "emotion-av") == older  # what --resume and export --profile pick


def test_an_empty_out_folder_given_by_the_user_stays_and_stays_empty(tmp_path, cli):
    out = tmp_path / "mine"
    out.mkdir()
    (tmp_path / "empty").mkdir()
    result = cli("train", "--profile", "cpu", "--model", "emotion-av", "--data", str(tmp_path / "empty"), "--out",
                 str(out))
    assert result.exit_code == 2 and REFUSAL in result.stderr
    assert out.is_dir() and list(out.iterdir()) == []


def test_a_run_that_started_keeps_its_folder_when_it_fails(profile_path, tmp_path, cli, monkeypatch):
    """The clean-up is for runs that never started: one that trained keeps its files to --resume from."""
    from lexiedge.train import checkpoint

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C at the first checkpoint

    monkeypatch.setattr(checkpoint, "save_checkpoint", interrupted)
    run = tmp_path / "run"
    with contextlib.suppress(KeyboardInterrupt):
        cli("train", "--profile", str(profile_path), "--out", str(run))
    assert (run / PROFILE_YAML).is_file() and (run / "run.json").is_file()
