"""A run that learns nothing says so (one warning line, recorded in run.json); one that learns does not.
Mixup and balanced class weights train the same tiny model through the real classifier trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_fixtures import ClusterSet, train_run

from lexiedge_classifier.trainer import balanced_class_weights

pytestmark = pytest.mark.slow

WARNING = "the model is not learning"


def _check(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())["learning_check"]


def test_shuffled_labels_get_the_learns_nothing_warning(tiny_profile, tmp_path: Path, capsys) -> None:
    profile = tiny_profile(train={"epochs": 6, "lr": 1e-2, "learning_check": 0.5},
                           data={"shuffle_train_labels": True, "train": 192, "val": 96})
    train_run(profile, tmp_path / "run")
    err = capsys.readouterr().err
    check = _check(tmp_path / "run")
    assert check["learning"] is False and check["metric"] == "val/uar" and check["chance"] == 0.25
    assert check["epoch"] == 3.0 and check["best"] <= check["chance"] + check["margin"]
    lines = [line for line in err.splitlines() if WARNING in line]
    assert len(lines) == 1, err
    assert "after 3 of 6 epochs" in lines[0] and "labels" in lines[0] and "train.lr" in lines[0]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["learning"] for r in records if r.get("event") == "learning_check"] == [False]


def test_a_run_that_learns_passes_the_check_silently(tiny_profile, tmp_path: Path, capsys) -> None:
    profile = tiny_profile(train={"epochs": 6, "lr": 1e-2, "learning_check": 0.5}, data={"train": 192, "val": 96})
    train_run(profile, tmp_path / "run")
    assert WARNING not in capsys.readouterr().err
    check = _check(tmp_path / "run")
    assert check["learning"] is True and check["best"] > check["chance"] + check["margin"]


def test_the_check_can_be_turned_off(tiny_profile, tmp_path: Path, capsys) -> None:
    profile = tiny_profile(train={"epochs": 2, "learning_check": None}, data={"shuffle_train_labels": True})
    train_run(profile, tmp_path / "run")
    assert WARNING not in capsys.readouterr().err
    assert "learning_check" not in json.loads((tmp_path / "run" / "run.json").read_text())


def test_mixup_and_balanced_class_weights_train_the_model(tiny_profile, tmp_path: Path) -> None:
    profile = tiny_profile(train={"epochs": 6, "lr": 1e-2, "mixup": 0.4, "class_weights": "balanced"},
                           data={"train": 192, "val": 96})
    result = train_run(profile, tmp_path / "run")
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert all(np.isfinite(row["train/loss"]) for row in history)
    assert result.metrics["test/uar"] >= 0.75, "mixed batches still teach the classes (chance 0.25)"


def test_balanced_weights_follow_the_training_labels() -> None:
    centres = (torch.zeros(3, 32), torch.zeros(3, 2, 3, 4, 4))
    dataset = ClusterSet(12, centres, 1.0, seed=0)
    dataset.labels = torch.tensor([0] * 6 + [1] * 4 + [2] * 2)
    weights = balanced_class_weights(dataset, 4, "label")
    np.testing.assert_allclose(weights.numpy(), [12 / (3 * 6), 12 / (3 * 4), 12 / (3 * 2), 0.0], rtol=1e-6)
    per_sample = weights[dataset.labels]
    assert per_sample.mean().item() == pytest.approx(1.0), "weights average 1 over the samples"
