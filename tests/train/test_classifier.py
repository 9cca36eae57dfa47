"""The `classifier` trainer: its metrics on hand-computed cases, and a real tiny run through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lexiedge.metrics import classification_metrics, confusion_matrix, macro_f1, uar, war
from lexiedge_classifier.trainer import ClassifierTrainer
from safetensors.torch import load_file
from torch.utils.data import DataLoader, default_collate

from lexiedge.api import BuiltModel
from lexiedge.errors import ProfileError
from train_fixtures import MODEL_KEY, ClustersPlugin, ClustersSettings, TinyAV, train_run

# --- metrics -------------------------------------------------------------------------------------


def test_confusion_matrix_counts_true_rows_and_predicted_columns() -> None:
    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix(np.array([3]), np.array([0]), num_classes=3)


def test_uar_war_and_macro_f1_by_hand() -> None:
    # true 0 x4, 1 x2, 2 x2 ; predictions: class 0 recall 3/4, class 1 recall 1/2, class 2 recall 0
    matrix = np.array([[3, 1, 0], [1, 1, 0], [2, 0, 0]])
    assert uar(matrix) == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)
    assert war(matrix) == pytest.approx(4 / 8)
    # F1 = 2TP / (support + predicted): class 0: 6/(4+6), class 1: 2/(2+2), class 2: 0/(2+0)
    assert macro_f1(matrix) == pytest.approx((0.6 + 0.5 + 0.0) / 3)


def test_uar_ignores_classes_without_samples_and_differs_from_war_on_imbalance() -> None:
    # 8 of class 0 all right, 2 of class 1 all wrong, class 2 absent: WAR 0.8 but UAR 0.5
    matrix = confusion_matrix(np.array([0] * 8 + [1] * 2), np.array([0] * 8 + [0] * 2), num_classes=3)
    assert war(matrix) == pytest.approx(0.8)
    assert uar(matrix) == pytest.approx(0.5)
    assert macro_f1(matrix) == pytest.approx((2 * 8 / (8 + 10) + 0.0) / 2)  # class 2: neither true nor predicted
    report = classification_metrics(matrix)
    assert report["recall_per_class"] == [1.0, 0.0, None] and report["samples"] == 10
    json.dumps(report)  # JSON-able as written into history.json and test_metrics.json


def test_evaluate_scores_a_whole_split() -> None:
    torch.manual_seed(0)
    settings = ClustersSettings(train=8, val=0, test=40)
    splits = ClustersPlugin().load(settings, None, built=None, model_settings=None, cache_dir=Path("."), console=None)
    built = BuiltModel(module=TinyAV(8, 4, 0.0).eval())
    trainer = ClassifierTrainer()
    with torch.no_grad():
        metrics = trainer.evaluate(built, DataLoader(splits.test, batch_size=16), "test")
        everything = default_collate([splits.test[i] for i in range(len(splits.test))])  # one batch of 40
        logits = built.module(*(everything[key] for key in ClassifierTrainer.input_keys))
    labels = splits.test.labels
    expected = torch.nn.functional.cross_entropy(logits, labels).item()
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)  # batches of 16, 16, 8 weighted by size
    assert metrics["war"] == pytest.approx((logits.argmax(-1) == labels).float().mean().item())
    assert metrics["samples"] == 40 and np.array(metrics["confusion"]).sum() == 40


# --- a real run --------------------------------------------------------------------------------------


def test_the_entry_point_registers_the_classifier() -> None:
    from lexiedge.plugin import build_host

    host = build_host()
    trainer = host.trainers.get_class("classifier")
    assert trainer is ClassifierTrainer and "av-classification" in trainer.tasks
    assert trainer.Settings(label_smoothing=0.1).label_smoothing == 0.1


def test_a_misspelt_or_invalid_trainer_key_fails_when_the_profile_loads(tiny_profile) -> None:
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    with pytest.raises(ProfileError, match="label_smoothing"):
        load_profile(tiny_profile(train={"label_smoothing": 1.5}), host=get_host())
    with pytest.raises(ProfileError, match="unknown key"):
        load_profile(tiny_profile(train={"lable_smoothing": 0.1}), host=get_host())


@pytest.mark.slow
def test_a_tiny_classifier_trains_to_high_uar_and_writes_its_run_directory(tiny_profile, tmp_path: Path) -> None:
    profile = tiny_profile(train={"epochs": 4, "lr": 1e-2, "label_smoothing": 0.05, "keep_last": 1})
    run = tmp_path / "run"
    result = train_run(profile, run)

    for name in ("profile.yaml", "run.json", "history.json", "metrics.jsonl", "test_metrics.json", "curves.png",
                 "confusion.png", "final/model.safetensors", "checkpoints/best/model.safetensors"):  # fmt: skip
        assert (run / name).is_file(), name
    for png in ("curves.png", "confusion.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("step-")] == ["step-00000048"]

    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["model_key"] == MODEL_KEY and info["step"] == 48
    assert info["plugins"] == {"model": "tiny-av", "data": "clusters", "train": "classifier"}
    assert info["best"]["metric"] == "val/uar" and info["world_size"] == 1

    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1.0, 2.0, 3.0, 4.0]
    for row in history:
        for key in ("train/loss", "train/uar", "train/war", "train/macro_f1", "val/loss", "val/uar", "val/war",
                    "val/macro_f1", "lr", "samples_per_s", "peak_memory_mb"):  # fmt: skip
            assert isinstance(row[key], float) and np.isfinite(row[key]), key
        assert np.array(row["val/confusion"]).sum() == 32
    assert history[-1]["train/loss"] < history[0]["train/loss"]
    assert history[-1]["val/uar"] >= 0.9
    assert info["best"]["value"] == max(row["val/uar"] for row in history)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "event" not in r] == list(range(1, 49))
    assert sum(r.get("event") == "eval" for r in records) == 4

    test = json.loads((run / "test_metrics.json").read_text())
    assert test["checkpoint"] == "best" and test["step"] == info["best"]["step"]
    assert test["uar"] >= 0.9 and test["war"] >= 0.9 and test["macro_f1"] >= 0.9  # chance is 0.25
    assert test["labels"] == [f"class-{i}" for i in range(4)] and test["samples"] == 48
    assert set(test["recall_per_label"]) == set(test["labels"])
    assert result.metrics["test/uar"] == test["uar"]

    # the untrained model (same seed, same init) is near chance on the same split: training did this
    torch.manual_seed(0)
    untrained = BuiltModel(module=TinyAV(16, 4, 0.1).eval())
    best = BuiltModel(module=TinyAV(16, 4, 0.1).eval())
    best.module.load_state_dict(load_file(run / "checkpoints" / "best" / "model.safetensors"))
    splits = ClustersPlugin().load(ClustersSettings(), None, built=None, model_settings=None, cache_dir=tmp_path, console=None)
    with torch.no_grad():
        before = ClassifierTrainer().evaluate(untrained, DataLoader(splits.test, batch_size=16), "test")
        after = ClassifierTrainer().evaluate(best, DataLoader(splits.test, batch_size=16), "test")
    assert before["uar"] < 0.6
    assert after["uar"] == pytest.approx(test["uar"])  # test_metrics.json came from the best weights


@pytest.mark.slow
def test_without_a_validation_split_the_test_uses_the_final_weights(tiny_profile, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_run(tiny_profile(train={"epochs": 1, "max_steps": 5}, data={"val": 0}), run)
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["checkpoint"] == "final" and test["step"] == 5
    assert not (run / "checkpoints" / "best").exists()
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 1 and history[0]["step"] == 5 and "val/uar" not in history[0]
