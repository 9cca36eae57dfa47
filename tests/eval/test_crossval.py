"""`lexiedge eval --folds K`: speaker-grouped cross-validation of a recipe, through the command a user types.

Real folds of a real synthetic RAVDESS-layout set (4 actors x 8 clips), each trained as `lexiedge train`
trains (the cpu profile's emotion-av, one optimizer step on 1 s clips: the protocol is under test, not
the model), and a real process killed with SIGKILL between two folds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_runner import lexiedge_ok

from lexiedge.crossval import PLAN_JSON, RESULTS_DIR, make_folds

pytestmark = pytest.mark.slow

ACTORS = 4
QUICK = [
    "--profile",
    "cpu",
    "--model",
    "emotion-av",
    "--set",
    "models.emotion-av.train.max_steps=1",
    "--set",
    "models.emotion-av.data.clip_seconds=1.0",
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("crossval") / "synth"
    lexiedge_ok("data", "synth-av", "--out", data, "--actors", ACTORS, "--clips-per-emotion", 1)
    return data


def test_make_folds_cut_the_speakers_into_disjoint_blocks_that_cover_them_all() -> None:
    folds = make_folds(list(range(1, 21)), 5)
    assert [f.test for f in folds] == [
        (1, 2, 3, 4),
        (5, 6, 7, 8),
        (9, 10, 11, 12),
        (13, 14, 15, 16),
        (17, 18, 19, 20),
    ]
    for fold in folds:
        assert not set(fold.train) & set(fold.test) and len(fold.train) == 16 and fold.val == ()
    uneven = make_folds(["ann", "bob", "cy", "dee", "eve"], 3, val_groups=1)
    assert [f.test for f in uneven] == [("ann", "bob"), ("cy", "dee"), ("eve",)]
    assert [f.val for f in uneven] == [("cy",), ("eve",), ("ann",)], (
        "the group after the test block validates"
    )
    for fold in uneven:
        assert sorted(fold.train + fold.val + fold.test) == ["ann", "bob", "cy", "dee", "eve"]
        assert (
            not (set(fold.train) & set(fold.val))
            | (set(fold.val) & set(fold.test))
            | (set(fold.train) & set(fold.test))
        )


def test_each_fold_trains_and_tests_on_speakers_it_never_shares(synth: Path, cli, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    result = cli("eval", "--folds", "3", *QUICK, "--data", str(synth), "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["path"] == str(out / "crossval.json")
    runs = report["runs"]
    assert [(r["fold"], r["seed"]) for r in runs] == [(1, 0), (2, 0), (3, 0)]
    assert sorted(a for r in runs for a in r["test_groups"]) == [1, 2, 3, 4], (
        "every actor tested exactly once"
    )
    for run in runs:
        trained = yaml.safe_load((Path(run["run_dir"]) / "profile.yaml").read_text())["models"]["emotion-av"]
        split = trained["data"]["split"]  # what the run really trained on
        assert split["test"] == run["test_groups"] and split["val"] == []
        assert not set(split["train"]) & set(split["test"])
        assert sorted(split["train"] + split["test"]) == [1, 2, 3, 4]
        assert run["samples"] == 8 * len(run["test_groups"]), (
            "the test split holds the test actors' clips only"
        )
        info = json.loads((Path(run["run_dir"]) / "run.json").read_text())
        assert info["fitted_to_data"]["clips"] == 8 * len(split["train"]), (
            "statistics fitted on training actors"
        )
        assert run["checkpoint"] == "final", "no validation split: the recipe's last weights are scored"
        assert sum(map(sum, run["confusion"])) == run["samples"]
    assert report["mean_sd"]["uar"]["n"] == 3
    mean = sum(r["metrics"]["uar"] for r in runs) / 3
    assert report["mean_sd"]["uar"]["mean"] == pytest.approx(mean)
    assert report["per_seed"]["0"]["pooled"]["uar"] == pytest.approx(
        json.loads((out / "crossval.json").read_text())["per_seed"]["0"]["pooled"]["uar"]
    )


def test_a_killed_cross_validation_continues_where_it_stopped(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    command = [
        sys.executable,
        "-m",
        "lexiedge",
        "eval",
        "--folds",
        "2",
        *QUICK,
        "--data",
        str(synth),
        "--out",
        str(out),
    ]
    first_result = out / RESULTS_DIR / "fold-1-seed-0.json"
    victim = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not first_result.is_file():
            assert victim.poll() is None, victim.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "fold 1 never finished"
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert not (out / RESULTS_DIR / "fold-2-seed-0.json").exists()
    kept = first_result.read_bytes()
    fold_1_log = (out / "fold-1-seed-0" / "metrics.jsonl").read_bytes()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "fold-1 (test 1, 2), seed 0: done before, kept" in again.stdout
    assert (
        first_result.read_bytes() == kept
        and (out / "fold-1-seed-0" / "metrics.jsonl").read_bytes() == fold_1_log
    )
    report = json.loads((out / "crossval.json").read_text())
    assert [(r["fold"], sorted(r["test_groups"])) for r in report["runs"]] == [(1, [1, 2]), (2, [3, 4])]

    enrolled = subprocess.run([*command, "--enroll", "neutral"], capture_output=True, text=True, timeout=600)
    assert enrolled.returncode == 0, enrolled.stdout[-3000:]
    assert (
        "train on" not in enrolled.stdout and enrolled.stdout.count("scored with enrollment (neutral)") == 2
    )
    rescored = json.loads((out / "crossval-enroll-neutral.json").read_text())
    assert rescored["protocol"]["enroll"] == "neutral"
    assert [r["samples"] for r in rescored["runs"]] == [2 * 6, 2 * 6], (
        "each actor's 2 neutral/calm clips not scored"
    )

    more_seeds = subprocess.run(
        [*command, "--seed", "0", "--seed", "1"], capture_output=True, text=True, timeout=600
    )
    assert more_seeds.returncode == 0, more_seeds.stdout[-3000:]
    assert more_seeds.stdout.count("done before, kept") == 2, "seed 0's folds are kept, seed 1's trained"
    assert sorted(p.name for p in (out / RESULTS_DIR).iterdir()) == [
        "fold-1-seed-0-enroll-neutral.json",
        "fold-1-seed-0.json",
        "fold-1-seed-1.json",
        "fold-2-seed-0-enroll-neutral.json",
        "fold-2-seed-0.json",
        "fold-2-seed-1.json",
    ]


def test_two_processes_share_one_cross_validation_fold_by_fold(synth: Path, tmp_path: Path) -> None:
    """`--fold`: two processes at once on one --out, each its fold; then the whole report from what they ran."""
    from lexiedge.rundir import run_lock

    out = tmp_path / "cv"
    command = [sys.executable, "-m", "lexiedge", "eval", "--folds", "2", *QUICK, "--data", str(synth), "--out", str(out)]
    shares = [subprocess.Popen([*command, "--fold", str(fold)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True) for fold in (1, 2)]
    logs = [share.communicate(timeout=600)[0] for share in shares]
    assert [share.returncode for share in shares] == [0, 0], [log[-3000:] for log in logs]
    for fold, log in zip((1, 2), logs):
        assert f"fold-{fold} (test" in log and f"fold-{3 - fold} (test" not in log, "each process ran its fold only"
        assert "the same command without --fold writes the report of all of them" in log
        share = json.loads((out / f"crossval-folds-{fold}.json").read_text())
        assert [run["fold"] for run in share["runs"]] == [fold]
        assert share["protocol"]["folds"] == 2 and share["protocol"]["only_folds"] == [fold]
    assert not (out / "crossval.json").exists(), "no process wrote a whole report from half the folds"

    whole = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    assert whole.stdout.count("done before, kept") == 2 and "train on" not in whole.stdout
    report = json.loads((out / "crossval.json").read_text())
    assert [run["fold"] for run in report["runs"]] == [1, 2] and report["mean_sd"]["uar"]["n"] == 2

    # a fold another process is training (it holds the run's lock): refused in one line, nothing removed
    busy = out / "fold-1-seed-1"
    with run_lock(busy):
        (busy / "profile.yaml").write_text("being written")
        refused = subprocess.run([*command, "--seed", "1", "--fold", "1"], capture_output=True, text=True,
                                 timeout=600)
        assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "is being written by another lexiedge process" in lines[0], refused.stderr
        assert (busy / "profile.yaml").read_text() == "being written"


def test_a_speaker_normalised_recipe_trains_and_scores_with_its_speakers_profiles(
    synth: Path, cli, tmp_path
) -> None:
    out = tmp_path / "cv"
    speaker = [
        "--set",
        "models.emotion-av.model.feature_norm=speaker",
        "--set",
        "models.emotion-av.data.enrollment.clips=neutral",
    ]
    result = cli("eval", "--folds", "2", *QUICK, *speaker, "--data", str(synth), "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [r["samples"] for r in runs] == [12, 12], (
        "the enrollment clips give the profile and are not scored"
    )
    for run in runs:
        info = json.loads((Path(run["run_dir"]) / "run.json").read_text())
        assert info["fitted_to_data"]["feature_norm"] == "speaker", "the global fallback is fitted too"
    missing = cli(
        "eval",
        "--folds",
        "2",
        *QUICK,
        speaker[0],
        speaker[1],
        "--data",
        str(synth),
        "--out",
        str(tmp_path / "no-enrollment"),
    )
    assert missing.exit_code == 2 and "needs each speaker's enrollment clips" in missing.stderr


def test_seed_ensembles_score_the_mean_of_their_seeds_probabilities(synth: Path, cli, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    two_seeds = ("--folds", "2", *QUICK, "--data", str(synth), "--out", str(out), "--seed", "0", "--seed", "1")
    result = cli("eval", *two_seeds, "--ensemble", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    ensemble = report["ensemble"]
    assert ensemble["seeds"] == [0, 1] and [row["fold"] for row in ensemble["folds"]] == [1, 2]
    runs = {(run["fold"], run["seed"]): run for run in report["runs"]}
    for row in ensemble["folds"]:
        fold = row["fold"]
        assert row["test_groups"] == runs[(fold, 0)]["test_groups"]
        assert row["samples"] == runs[(fold, 0)]["samples"] == 16, "the fold's test clips, each scored once"
        for seed, member in zip((0, 1), row["members"], strict=True):
            assert member["uar"] == pytest.approx(runs[(fold, seed)]["metrics"]["uar"]), (
                "a member scored again from its final weights scores what its training scored"
            )
        where = out / "ensembles" / f"fold-{fold}-ensemble-seeds-0-1"
        first, second = (json.loads((where / f"member-{i:02d}" / "predictions.json").read_text()) for i in (0, 1))
        combined = json.loads((where / "predictions.json").read_text())
        assert first["truth"] == second["truth"] == combined["truth"] and len(combined["truth"]) == 16
        mean = (np.asarray(first["probabilities"]) + np.asarray(second["probabilities"])) / 2
        assert np.abs(np.asarray(combined["probabilities"]) - mean).max() < 1e-5
        top_two = np.sort(mean, axis=-1)[:, -2:]
        clear = top_two[:, 1] - top_two[:, 0] > 1e-5  # near-ties may round either way
        assert (np.asarray(combined["predicted"])[clear] == mean.argmax(-1)[clear]).all()
    assert ensemble["mean_sd"]["uar"]["mean"] == pytest.approx(
        sum(row["metrics"]["uar"] for row in ensemble["folds"]) / 2
    )

    again = cli("eval", *two_seeds, "--ensemble")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.count("ensemble of seeds 0, 1: done before, kept") == 2
    assert "ensemble of seeds 0, 1 (mean of probabilities), per fold" in again.stdout

    members = [str(out / "fold-1-seed-0"), str(out / "fold-1-seed-1")]
    direct = cli("eval", *members, "--ensemble", "--out", str(tmp_path / "direct"), "--json")
    assert direct.exit_code == 0, direct.stderr
    rows = json.loads(direct.stdout)["results"]
    assert [row["kind"] for row in rows] == ["run", "run", "ensemble"]
    assert rows[-1]["metrics"]["uar"] == pytest.approx(ensemble["folds"][0]["metrics"]["uar"]), (
        "`lexiedge eval RUN RUN --ensemble` scores what the cross-validation scored for that fold"
    )


def test_a_distilled_fold_learns_only_from_the_teachers_runs_of_the_same_fold(synth: Path, cli, tmp_path: Path) -> None:
    teachers = tmp_path / "teachers"
    folds = ("--folds", "2", *QUICK, "--data", str(synth))
    made = cli("eval", *folds, "--out", str(teachers), "--seed", "0", "--seed", "1")
    assert made.exit_code == 0, made.stderr

    distilled = ("--set", f"models.emotion-av.train.distill.teachers=[{teachers}]")
    student = tmp_path / "student"
    result = cli("eval", *folds, *distilled, "--out", str(student), "--seed", "2", "--json")
    assert result.exit_code == 0, result.stderr
    for run in json.loads(result.stdout)["runs"]:
        recipe = yaml.safe_load((student / f"fold-{run['fold']}-seed-2" / "profile.yaml").read_text())
        taught_by = recipe["models"]["emotion-av"]["train"]["distill"]["teachers"]
        assert taught_by == [str((teachers / f"fold-{run['fold']}-seed-{seed}").resolve()) for seed in (0, 1)], (
            "each fold learns from the teachers' runs of its own fold: none of them heard its test speakers"
        )
        for teacher in taught_by:
            assert json.loads((Path(teacher) / "run.json").read_text())["status"] == "completed"

    other_folds = cli("eval", "--folds", "3", *QUICK, "--data", str(synth), *distilled, "--out", str(tmp_path / "x"))
    assert other_folds.exit_code == 2
    assert other_folds.stderr.strip().count("\n") == 0, other_folds.stderr
    # 3 folds of 4 actors: fold 1 (test 1-2) is the teachers' fold 1, fold 2 (test 3) is none of theirs
    assert "is a cross-validation without this fold-2 (training on 1, 2, 4, testing on 3)" in other_folds.stderr
    assert not (tmp_path / "x").exists(), "refused before any fold trained"
    assert "teach with a cross-validation of the same --folds over the same speakers" in other_folds.stderr


def test_bad_cross_validation_requests_are_one_line_each(synth: Path, cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    done = tmp_path / "done"
    (done / PLAN_JSON).parent.mkdir()
    (done / PLAN_JSON).write_text(
        json.dumps(
            {
                "model_key": "emotion-av",
                "recipe": {},
                "device": None,
                "data": None,
                "folds": [],
                "val_groups": 0,
            }
        )
    )
    cases = [
        (
            ("--folds", "5", *QUICK, "--data", str(synth)),
            "--folds 5 is more than the 4 speakers in the data (1-4); use at most --folds 4",
        ),
        (
            ("--folds", "1", *QUICK, "--data", str(synth)),
            "--folds 1: cross-validation needs at least 2 folds",
        ),
        (
            ("--folds", "2", "--profile", "cpu", "--model", "qwen-lora"),
            "data plugin 'chat-jsonl' declares no speaker groups",
        ),
        (
            ("--folds", "2", "--profile", "cpu", "--data", str(synth)),
            "--folds needs --model: profile 'cpu' has",
        ),
        (("--folds", "2", "--data", str(synth)), "--folds needs the recipe to cross-validate"),
        (
            ("--folds", "2", *QUICK, "--data", str(synth), "--out", str(other)),
            "is not a cross-validation folder",
        ),
        (
            ("--folds", "2", *QUICK, "--data", str(synth), "--out", str(done)),
            "holds a cross-validation of another",
        ),
        (
            ("--folds", "2", *QUICK, "--data", str(synth), "--val-groups", "2"),
            "--val-groups 2: with 4 speakers",
        ),
        (("--folds", "2", *QUICK, "--data", str(tmp_path / "nowhere")), "no such file or folder"),
        ((str(tmp_path), "--profile", "cpu"), "--profile applies to --folds"),
        ((str(tmp_path), "--fold", "1"), "--fold applies to --folds"),
        (("--folds", "2", *QUICK, "--data", str(synth), "--fold", "3"), "--fold 3: this cross-validation has 2 folds"),
        (("--folds", "2", *QUICK, "--data", str(synth), "--ensemble"), "pass 2 or more seeds (got 1)"),
        ((str(tmp_path), "--ensemble"), "--ensemble combines 2 or more runs or artifacts; got 1"),
        (
            ("--folds", "2", *QUICK, "--data", str(synth), "--enroll", "one"),
            "--enroll 'one': expected neutral",
        ),
        (
            ("--folds", "2", *QUICK, "--data", str(synth), "--enroll", "9"),
            "actor 01 has 8 clips with audio, 8 of",
        ),
    ]
    unused = tmp_path / "unused"
    for args, expected in cases:
        if "--folds" in args and "--out" not in args:
            args = (*args, "--out", str(unused))  # never evals/ in the working directory
        result = cli("eval", *args)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2, (args, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (
            args,
            result.stderr,
        )
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"], "nothing written into a foreign folder"
    assert not unused.exists(), "bad input is refused before the output folder is made"
