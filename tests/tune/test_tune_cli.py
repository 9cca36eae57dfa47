"""Bad input to `lexiedge tune`: one line naming what was wrong, exit 2, nothing trained, no folder left."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune_fixtures import MODEL, TINY_PROFILE

SPLIT = "{train: [1, 2, 3, 4], val: [5], test: [6]}"


def _one_line_error(result, *expected: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture
def tune(cli, tmp_path: Path):
    """``tune(*args)`` runs `lexiedge tune --profile tiny-av --model emotion-av --out TMP/search ARGS...`."""
    out = tmp_path / "search"

    def run(*args: str):
        result = cli("tune", "--profile", str(TINY_PROFILE), "--model", MODEL, "--out", str(out), *args)
        assert not out.exists() or result.exit_code == 0  # a refused search leaves nothing behind
        return result

    return run


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"space": {"train.lrr": {"low": 1.0e-4, "high": 1.0e-2}}}, ("train.lrr", "unknown key")),
        (
            {"space": {"model.audio.dropout": {"low": 0.3, "high": 0.1}}},
            ("model.audio.dropout", "must be below high"),
        ),
        (
            {"space": {"train.label_smoothing": {"low": 0.0, "high": 1.5}}},
            ("train.label_smoothing", "1.5 is refused"),
        ),
        (
            {"space": {"device.memory_gb": {"low": 1, "high": 4}}},
            ("device.memory_gb", "relative to models.<model>"),
        ),
        ({"space": {"train.lr": {"low": 1.0e-4, "high": 1.0e-2}}, "first": []}, ("first", "unknown section")),
        (
            {"space": {"train.lr": {"low": 1.0e-4, "high": 1.0e-2}}, "try_first": [{"train.lr": 1.0}]},
            ("try_first[0].train.lr", "outside the space"),
        ),
    ],
)
def test_a_bad_space_file_is_one_line_naming_the_key(tune, space_file, space, expected) -> None:
    _one_line_error(tune("--trials", "3", "--space", str(space_file(space))), *expected)


def test_a_missing_space_file_is_one_line(tune, tmp_path: Path) -> None:
    _one_line_error(
        tune("--trials", "3", "--space", str(tmp_path / "nope.yaml")), "nope.yaml", "no such file"
    )


@pytest.mark.parametrize("trials", ["0", "-2"])
def test_trials_must_be_at_least_one(tune, trials: str) -> None:
    _one_line_error(tune("--trials", trials), "--trials must be at least 1")


def test_trials_are_required_for_a_new_search(tune) -> None:
    _one_line_error(tune(), "--trials N is required")


def test_resuming_without_a_search_is_one_line(cli, tmp_path: Path) -> None:
    result = cli(
        "tune", "--profile", str(TINY_PROFILE), "--model", MODEL, "--resume", "--out", str(tmp_path / "none")
    )
    _one_line_error(result, "tune.json cannot be read")


def test_a_profile_with_several_models_needs_model(cli) -> None:
    _one_line_error(cli("tune", "--profile", "cpu", "--trials", "2"), "several models", "--model")


def test_write_profile_must_be_a_yaml_file(tune, tmp_path: Path) -> None:
    _one_line_error(tune("--trials", "2", "--write-profile", str(tmp_path)), "--write-profile", ".yaml")


def test_missing_data_is_refused_before_anything_trains(tune, tmp_path: Path) -> None:
    _one_line_error(tune("--trials", "2", "--data", str(tmp_path / "absent")), "--data", "does not exist")


def test_more_folds_than_the_speakers_a_search_may_use_is_one_line(tune, synth_av: Path) -> None:
    data = ["--trials", "2", "--data", str(synth_av)]
    # no split in the profile: RAVDESS's test actors are 21-24, absent here, so all 6 actors may be folded
    _one_line_error(tune(*data, "--folds", "7"), "--folds 7 is more than the 6 speakers", "at most --folds 6")
    # a split whose test actor is 6: 5 speakers are left to fold
    result = tune(*data, "--folds", "6", "--set", f"models.{MODEL}.data.split={SPLIT}")
    _one_line_error(result, "--folds 6 is more than the 5 speakers", "test split's 6", "at most --folds 5")
    _one_line_error(tune(*data, "--folds", "1"), "at least 2 folds")


def test_folds_need_a_classification_metric(cli, tmp_path: Path) -> None:
    result = cli(
        "tune",
        "--profile",
        "cpu",
        "--model",
        "qwen-lora",
        "--folds",
        "2",
        "--trials",
        "2",
        "--out",
        str(tmp_path / "lm"),
    )
    _one_line_error(result, "--folds scores uar", "val/loss")
