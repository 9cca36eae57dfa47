"""``train.compile`` on the classifier trainer: the whole model compiled in place trains like eager and
saves the same tensor names (the causal-LM decoder's case is in tests/qwen_lora/test_training.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file
from train_fixtures import train_run

pytestmark = pytest.mark.slow


def test_a_compiled_classifier_trains_and_checkpoints_like_an_eager_one(tiny_profile, tmp_path: Path) -> None:
    settings = {"epochs": 3, "lr": 1e-2}
    train_run(tiny_profile(train=settings), tmp_path / "eager")
    train_run(tiny_profile(train={**settings, "compile": True}), tmp_path / "compiled")

    eager = load_file(tmp_path / "eager" / "final" / "model.safetensors")
    compiled = load_file(tmp_path / "compiled" / "final" / "model.safetensors")
    assert compiled.keys() == eager.keys() and not any("_orig_mod" in key for key in compiled)
    history = json.loads((tmp_path / "compiled" / "history.json").read_text())
    reference = json.loads((tmp_path / "eager" / "history.json").read_text())
    assert [row["step"] for row in history] == [row["step"] for row in reference]
    # the clusters are separable: both learn them; dropout's masks differ (inductor draws its own numbers)
    assert history[-1]["val/uar"] > 0.8 and reference[-1]["val/uar"] > 0.8
    assert history[-1]["train/loss"] < history[0]["train/loss"]
    assert json.loads((tmp_path / "compiled" / "run.json").read_text())["status"] == "completed"
