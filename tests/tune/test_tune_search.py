"""A real search on synthetic clips: 3 trials of the tiny emotion-av profile, one pruned, SIGKILLed in the
middle of the third, resumed to completion; its best trial written as a profile that `lexiedge train` runs.

One search (module scope) serves every test here: it is the expensive part (about a minute on 2 cores).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from lexiedge.rundir import load_run_profile
from lexiedge.train.resume import compare
from tune_fixtures import MODEL, TINY_PROFILE

pytestmark = pytest.mark.slow

# trial 0: the profile's own settings (lr 3e-3: learns within the first epoch); trial 1: a rate that learns
# nothing, tried first, so the median pruner (armed after 1 complete trial, from epoch 0) stops it after its
# first epoch; trial 2: the sampler's, killed mid-training
SPACE = {
    "space": {
        "train.lr": {"low": 1.0e-9, "high": 1.0e-2, "log": True},
        "dropout": {"keys": ["model.head.dropout", "model.fusion.dropout"], "low": 0.0, "high": 0.3},
    },
    "try_first": [{"train.lr": 1.0e-9}],
}
PRUNING = ["--prune-startup", "1", "--prune-warmup", "0"]


def _tune_args(folder: Path, space: Path, synth: Path) -> list[str]:
    return [
        "tune",
        "--profile",
        str(TINY_PROFILE),
        "--model",
        MODEL,
        "--data",
        str(synth),
        "--trials",
        "3",
        "--space",
        str(space),
        "--out",
        str(folder),
        *PRUNING,
    ]


def _kill_during_trial_2(folder: Path, space: Path, synth: Path) -> str:
    """`lexiedge tune` in a child process, SIGKILLed once trial 2 is training (its run.json exists)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lexiedge", *_tune_args(folder, space, synth)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = folder / "trials" / "0002" / "run.json"
    deadline = time.monotonic() + 900
    while not started.is_file():
        if process.poll() is not None:
            pytest.fail(f"the search ended before trial 2 started:\n{process.stdout.read()[-3000:]}")
        assert time.monotonic() < deadline, "trial 2 never started"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return output


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory, synth_av: Path) -> dict:
    from lexiedge.cli import main

    root = tmp_path_factory.mktemp("tune")
    folder, space = root / "search", root / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE, sort_keys=False), encoding="utf-8")
    killed_output = _kill_during_trial_2(folder, space, synth_av)
    study = optuna.load_study(study_name="lexiedge-tune", storage=f"sqlite:///{folder / 'study.db'}")
    states_at_kill = {t.number: t.state.name for t in study.get_trials()}
    finished_files = {
        path: path.read_bytes()
        for number in (0, 1)
        for path in sorted((folder / "trials" / f"{number:04d}").rglob("*"))
        if path.is_file()
    }
    best = root / "profiles" / "best.yaml"
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = main(
            [
                "tune",
                "--profile",
                str(TINY_PROFILE),
                "--model",
                MODEL,
                "--resume",
                "--out",
                str(folder),
                "--write-profile",
                str(best),
                "--json",
            ]
        )
    assert code == 0, captured.getvalue()[-3000:]
    return {
        "folder": folder,
        "killed_output": killed_output,
        "states_at_kill": states_at_kill,
        "finished_files": finished_files,
        "document": json.loads(captured.getvalue()),
        "best": best,
        "synth": synth_av,
        "space": space,
    }


def test_the_kill_left_trial_2_running_and_the_first_two_finished(search) -> None:
    assert search["states_at_kill"] == {0: "COMPLETE", 1: "PRUNED", 2: "RUNNING"}
    lines = [line for line in search["killed_output"].splitlines() if line.startswith("[")]
    assert lines[0].startswith("[1/3] trial 0 | lr=0.003 dropout=0.1 | val/uar") and "complete" in lines[0]
    assert lines[1].startswith("[2/3] trial 1 | lr=1e-09") and "| pruned |" in lines[1]
    assert "best" in lines[1] and "(trial 0)" in lines[1]


def test_the_resume_reruns_the_interrupted_trial_and_keeps_the_finished_ones(search) -> None:
    document, folder = search["document"], search["folder"]
    trials = {t["number"]: t for t in document["trials"]}
    assert [trials[n]["state"] for n in (0, 1, 2)] == ["complete", "pruned", "interrupted"]
    assert trials[3]["rerun_of"] == 2 and trials[3]["params"] == trials[2]["params"]
    assert trials[3]["state"] in ("complete", "pruned") and len(trials) == 4  # 3 finished: the search is done
    assert trials[0]["origin"] == "baseline" and trials[1]["origin"] == "try_first"
    for path, content in search["finished_files"].items():  # trials 0 and 1 were not trained again
        assert path.read_bytes() == content, f"{path} changed on resume"
    study = optuna.load_study(study_name="lexiedge-tune", storage=f"sqlite:///{folder / 'study.db'}")
    assert [t.state.name for t in study.get_trials()] == [
        "COMPLETE",
        "PRUNED",
        "FAIL",
        trials[3]["state"].upper(),
    ]
    assert json.loads((folder / "tune.json").read_text())["trials"] == document["trials"]
    assert document["study"] == str(folder / "study.db") and document["request"]["trials"] == 3


def test_a_clearly_worse_trial_is_pruned_after_its_first_epoch(search) -> None:
    folder = search["folder"]
    baseline = json.loads((folder / "trials" / "0000" / "history.json").read_text())
    learned = baseline[0]["val/uar"]
    assert learned > 0.125 + 0.05, (
        f"the baseline did not learn in its first epoch (val UAR {learned}): no contrast"
    )
    pruned = next(t for t in search["document"]["trials"] if t["number"] == 1)
    assert pruned["state"] == "pruned" and pruned["epochs"] == 1.0 and pruned["value"] < learned
    run = json.loads((folder / "trials" / "0001" / "run.json").read_text())
    assert run["status"] == "stopped" and run["reason"].startswith("pruned at epoch 1.00: val/uar")
    assert not (folder / "trials" / "0001" / "final").exists()  # it stopped; the baseline trained to the end
    assert (folder / "trials" / "0000" / "final" / "model.safetensors").is_file()


def test_no_trial_ever_evaluates_the_test_split(search) -> None:
    for run_dir in (search["folder"] / "trials").glob("[0-9]*"):
        if run_dir.is_dir():
            assert not (run_dir / "test_metrics.json").exists(), run_dir
            metrics = run_dir / "metrics.jsonl"  # the killed trial was stopped before it logged a step
            assert not metrics.exists() or '"test/' not in metrics.read_text()


def test_the_best_trial_becomes_a_profile_that_trains_as_is(search, cli) -> None:
    best, document = search["best"], search["document"]
    assert document["profile_written"] == str(best)
    written = yaml.safe_load(best.read_text())
    assert written["extends"] == os.path.relpath(TINY_PROFILE, best.parent)  # the searched profile, by path
    tuned = written["models"][MODEL]
    assert set(tuned) <= {"train", "model"} and set(tuned["model"]) == {"head", "fusion"}
    assert tuned["train"]["lr"] == document["best"]["params"]["train.lr"]
    run = search["folder"].parent / "best-run"
    result = cli(
        "train", "--profile", str(best), "--model", MODEL, "--data", str(search["synth"]), "--out", str(run)
    )
    assert result.exit_code == 0, result.stderr
    trained, _ = load_run_profile(run)
    best_trial, _ = load_run_profile(Path(document["best"]["run_dir"]))
    assert (
        compare(best_trial, trained, MODEL, None, None) == []
    )  # exactly the settings the best trial trained with
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_the_study_plot_and_the_per_trial_logs_are_written(search) -> None:
    folder = search["folder"]
    assert (folder / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert search["document"]["plot"] == str(folder / "study.png")
    log = (folder / "trials" / "0001.log").read_text()
    assert log.startswith("lexiedge train --profile") and "--set models.emotion-av.train.lr=1.0e-09" in log


def test_resuming_with_another_space_is_refused_in_one_line(search, cli, space_file) -> None:
    other = space_file({"space": {"train.lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True}}})
    result = cli(
        "tune",
        "--profile",
        str(TINY_PROFILE),
        "--model",
        MODEL,
        "--resume",
        "--out",
        str(search["folder"]),
        "--space",
        str(other),
    )
    assert result.exit_code == 2 and "recorded search space" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    more = cli(
        "tune",
        "--profile",
        str(TINY_PROFILE),
        "--model",
        MODEL,
        "--resume",
        "--out",
        str(search["folder"]),
        "--seed",
        "3",
    )
    assert more.exit_code == 2 and "recorded --seed (0)" in more.stderr


def test_with_folds_a_trial_is_the_k_fold_mean_over_speakers_never_the_test_split(
    cli, synth_av: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "folds"
    split = "{train: [1, 2, 3, 4], val: [5], test: [6]}"
    sets = ["--set", f"models.{MODEL}.train.epochs=1", "--set", f"models.{MODEL}.data.split={split}"]
    args = ["--data", str(synth_av), "--trials", "1", "--folds", "2", "--out", str(folder), "--json", *sets]
    result = cli("tune", "--profile", str(TINY_PROFILE), "--model", MODEL, *args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    request, trial = document["request"], document["trials"][0]
    assert request["fold_groups"] == [1, 2, 3, 4, 5] and request["held_out_groups"] == [6]  # the split's test
    assert request["objective"] == "uar (2-fold mean)" and trial["state"] == "complete"
    crossval = json.loads((folder / "trials" / "0000" / "crossval.json").read_text())
    runs = crossval["runs"]
    assert sorted(group for run in runs for group in run["test_groups"]) == [1, 2, 3, 4, 5]
    assert all(6 not in run["train_groups"] + run["val_groups"] + run["test_groups"] for run in runs)
    assert trial["value"] == pytest.approx(sum(run["metrics"]["uar"] for run in runs) / 2)
    assert trial["value"] == pytest.approx(crossval["mean_sd"]["uar"]["mean"])
    assert "2-fold mean of uar over speakers 1, 2, 3, 4, 5 (never the test split's 6)" in result.stderr
