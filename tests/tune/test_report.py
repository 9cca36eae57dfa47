"""The study's reports from a real Optuna study (a cheap objective stands in for training): importances."""

from __future__ import annotations

from pathlib import Path

import optuna

from lexiedge.tune.report import draw_study
from lexiedge.tune.search import MIN_TRIALS_FOR_IMPORTANCE, importances, summarize


def _study(trials: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    # the score follows lr alone; dropout does nothing
    study.optimize(
        lambda t: -abs(t.suggest_float("train.lr", 0, 1) - 0.3) + 0 * t.suggest_float("dropout", 0, 1),
        n_trials=trials,
    )
    return study


def test_importances_wait_for_enough_trials_then_rank_what_moves_the_score(tmp_path: Path) -> None:
    assert importances(_study(MIN_TRIALS_FOR_IMPORTANCE - 1)) is None
    found = importances(_study(20))
    assert found is not None and found["train.lr"] > found["dropout"]
    trials, best = summarize(_study(20), tmp_path)
    assert len(trials) == 20 and best["value"] == max(t["value"] for t in trials)
    plot = draw_study(trials, found, "val/uar", "maximize", tmp_path / "study.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
