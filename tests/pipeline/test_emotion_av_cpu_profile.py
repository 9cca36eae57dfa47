"""Issue 3's end-to-end check: `synth-av` data, the shipped `cpu` profile, a real run that learns.

Everything goes through the console commands a user types; nothing is stubbed. The synthetic clips
are real mp4 files (PyAV-encoded H.264 + AAC) whose voice and face differ by emotion, so a model that
learns from both streams must beat chance (1/8) on actors it never saw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CHANCE = 1 / 8
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lexiedge.cli import main

    root = tmp_path_factory.mktemp("emotion-av-cpu")
    # 4 clips per actor and emotion: 32 held-out clips, so the floor below is not one near-tie away on
    # another CPU (bench/bench_learning_sweep.py measures the spread over seeds and threads)
    assert main(["data", "synth-av", "--out", str(root / "synth"), "--actors", "6", "--clips-per-emotion", "4"]) == 0
    assert main(["train", "--profile", "cpu", "--model", "emotion-av", "--data", str(root / "synth"),
                 "--out", str(root / "run")]) == 0
    return root / "run"


def test_the_cpu_profile_learns_synthetic_emotions_far_above_chance(trained_run: Path) -> None:
    test = json.loads((trained_run / "test_metrics.json").read_text())
    assert test["split"] == "test" and test["samples"] == 32, "actor 6 of 6 is the test split: 32 clips"
    assert test["uar"] >= 3 * CHANCE, f"test UAR {test['uar']:.3f} is not far above chance {CHANCE}"
    assert 0 <= test["macro_f1"] <= 1 and test["war"] >= 3 * CHANCE
    confusion = test["confusion"]
    assert len(confusion) == 8 and sum(map(sum, confusion)) == test["samples"]


def test_the_run_directory_has_checkpoints_history_plots_and_metrics(trained_run: Path) -> None:
    history = json.loads((trained_run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [float(e) for e in range(1, len(history) + 1)]
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    epochs = load_profile("cpu", host=get_host()).model("emotion-av").train.settings.epochs
    assert len(history) == epochs, "the cpu profile's epochs"
    for key in ("train/loss", "train/uar", "val/loss", "val/uar", "val/war", "val/macro_f1"):
        assert key in history[-1], key
    assert history[-1]["train/loss"] < history[0]["train/loss"]

    run = json.loads((trained_run / "run.json").read_text())
    assert run["status"] == "completed" and run["best"]["metric"] == "val/uar"
    assert Path(run["data_path"]).is_absolute(), "later stages (export) must find the data from anywhere"
    assert (trained_run / run["best"]["checkpoint"] / "model.safetensors").is_file()
    steps = sorted((trained_run / "checkpoints").glob("step-*"))
    assert steps and all((s / "model.safetensors").is_file() and (s / "trainer_state.pt").is_file() for s in steps)
    assert (trained_run / "final" / "model.safetensors").is_file()
    for plot in ("curves.png", "confusion.png"):
        assert (trained_run / plot).read_bytes()[:8] == PNG_MAGIC, plot
    lines = (trained_run / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["step"] == 1 and len(lines) >= run["total_steps"]
