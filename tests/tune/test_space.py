"""The search space: space files read into ranges and choices, checked against a real profile."""

from __future__ import annotations

import pytest
import yaml

from lexiedge.plugin import get_host
from lexiedge.profile import load_profile, parse_override
from lexiedge.tune.search import baseline_values
from lexiedge.tune.space import (
    Choice,
    FloatRange,
    IntRange,
    SearchSpace,
    SpaceError,
    check_against_profile,
    read_space_file,
    yaml_scalar,
)
from tune_fixtures import MODEL, TINY_PROFILE


@pytest.mark.parametrize("value", [1e-5, 3.0e-4, 0.1, 2.0, 1e20, 7, True, None, "mean_std"])
def test_a_value_goes_through_a_set_line_unchanged(value) -> None:
    _, parsed = parse_override(f"models.m.train.x={yaml_scalar(value)}")
    assert parsed == value and type(parsed) is type(value)


def test_whole_number_ranges_search_integers_unless_typed_float(space_file) -> None:
    space = read_space_file(
        space_file(
            {
                "space": {
                    "train.epochs": {"low": 10, "high": 40, "step": 10},
                    "train.label_smoothing": {"low": 0, "high": 1, "type": "float"},
                    "models.emotion-av.train.lr": {
                        "low": 1.0e-4,
                        "high": 1.0e-2,
                        "log": True,
                    },  # a full key is made relative
                    "train.batch_size": {"choices": [4, 8, 16]},
                    "dropout": {
                        "keys": ["model.head.dropout", "model.fusion.dropout"],
                        "low": 0.0,
                        "high": 0.3,
                    },
                }
            }
        ),
        MODEL,
    )
    epochs, smoothing, lr, batch, dropout = space.params
    assert isinstance(epochs, IntRange) and epochs.contains(30) and not epochs.contains(35)
    assert isinstance(smoothing, FloatRange) and smoothing.contains(0.5)
    assert lr.name == "train.lr" and lr.log and not lr.contains(0.5)
    assert isinstance(batch, Choice) and batch.contains(8) and not batch.contains(6)
    assert dropout.keys == ("model.head.dropout", "model.fusion.dropout")
    assert space.overrides(MODEL, {"dropout": 0.25, "train.lr": 1e-5}) == [
        "models.emotion-av.train.lr=1.0e-05",
        "models.emotion-av.model.head.dropout=0.25",
        "models.emotion-av.model.fusion.dropout=0.25",
    ]
    again = read_space_file(
        space_file(space.as_yaml()), MODEL
    )  # --show-space prints what reads back the same
    assert again.params == space.params


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"low": 0.1, "high": 0.01}, "must be below high"),
        ({"low": 0.0, "high": 0.1, "log": True}, "log: true needs low above 0"),
        ({"choices": []}, "choices is empty"),
        ({"lo": 0.1, "high": 1.0}, "lo: unknown field"),
        ({"low": 1, "high": 4, "step": 5}, "step must be"),
        ({"choices": [[16], [32, 16]]}, "choices must be numbers"),
    ],
)
def test_a_bad_range_names_the_key(space_file, entry, problem) -> None:
    path = space_file({"space": {"train.lr": entry}})
    with pytest.raises(SpaceError, match=problem) as caught:
        read_space_file(path, MODEL)
    assert str(caught.value).startswith(f"{path}: train.lr: ")


def test_try_first_points_must_lie_in_the_space() -> None:
    lr = FloatRange("train.lr", 1e-4, 1e-2, log=True)
    assert SearchSpace((lr,), ({"train.lr": 1e-3},)).try_first
    with pytest.raises(SpaceError, match=r"try_first\[0\].train.lr: 0.5 is outside the space"):
        SearchSpace((lr,), ({"train.lr": 0.5},))
    with pytest.raises(SpaceError, match="not a parameter of the space"):
        SearchSpace((lr,), ({"train.epochs": 3},))
    with pytest.raises(SpaceError, match="set by two parameters"):
        SearchSpace((lr, FloatRange("rate", 1e-4, 1e-2, keys=("train.lr",))))
    with pytest.raises(SpaceError, match="start with model., data., train."):
        FloatRange("device.memory_gb", 1, 2)


def test_the_profile_decides_which_keys_and_values_exist() -> None:
    host = get_host()
    declared = SearchSpace((FloatRange("train.lr", 1e-4, 1e-2, log=True), Choice("data.no_such_key", (1, 2))))
    kept, notes = check_against_profile(declared, TINY_PROFILE, [], MODEL, host, declared=True)
    assert [p.name for p in kept.params] == ["train.lr"] and "data.no_such_key" in notes[0]
    with pytest.raises(SpaceError, match="unknown key data.no_such_key"):
        check_against_profile(declared, TINY_PROFILE, [], MODEL, host, declared=False)
    refused = SearchSpace((FloatRange("train.label_smoothing", 0.0, 1.5),))
    with pytest.raises(SpaceError, match="1.5 is refused for train.label_smoothing: .*less than 1"):
        check_against_profile(refused, TINY_PROFILE, [], MODEL, host, declared=False)


def test_the_baseline_is_the_profiles_own_values_inside_the_space() -> None:
    profile = load_profile(TINY_PROFILE, host=get_host())  # lr 3e-3, batch 8, dropouts at their 0.1 default
    space = SearchSpace(
        (
            FloatRange("train.lr", 1e-4, 1e-2, log=True),
            Choice("train.batch_size", (4, 16)),
            FloatRange("dropout", 0.0, 0.3, keys=("model.head.dropout", "model.fusion.dropout")),
        )
    )
    values, outside = baseline_values(space, profile, MODEL)
    assert values == {"train.lr": 3e-3, "dropout": 0.1} and outside == ["train.batch_size"]


def test_each_model_declares_a_default_space_its_profiles_accept(cli) -> None:
    for model, expected in (
        (
            "emotion-av",
            {
                "train.lr",
                "train.weight_decay",
                "dropout",
                "train.label_smoothing",
                "train.batch_size",
                "train.epochs",
                "data.clip_seconds",
            },
        ),
        ("qwen-lora", {"train.lr", "model.lora.r", "model.lora.alpha", "model.lora.dropout", "train.epochs"}),
    ):
        result = cli("tune", "--profile", "cpu", "--model", model, "--show-space")
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""  # no key left out: the cpu profile's plugins have them all
        document = yaml.safe_load(result.stdout)
        assert set(document["space"]) == expected
