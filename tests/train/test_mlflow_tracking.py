"""MLflow as a second tracker: a real tiny run mirrors metrics.jsonl into a local MLflow store.

The tiny `classifier` run of train_fixtures trains through the real pipeline with
``trackers: [tensorboard, mlflow]``; the store is read back with MLflow's own client. Offline: the
store is a folder in the run directory (the default) and telemetry is off.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from lexiedge.errors import ProfileError
from lexiedge.train import mlflow_tracking, trackers
from train_fixtures import MODEL_KEY, train_run

# 96 training samples in micro-batches of 16: 6 optimizer steps an epoch, evaluated every 3
TRAIN = {"epochs": 1, "batch_size": 16, "eval_every": 3, "trackers": ["tensorboard", "mlflow"]}


@pytest.fixture
def mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MLflow settings of the developer's shell: the run's default store, not theirs."""
    pytest.importorskip("mlflow")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    # what the tracker sets for itself, restored after the test (it would stay set in this process)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _metrics_jsonl_curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl as curves: each step line's lr and train/loss; each evaluation's numbers, its train
    loss (the mean since the last evaluation) as train/loss_mean and without the step's lr again."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for record in _records(run):
        event = record.get("event")
        if event not in (None, "eval"):
            continue
        for key, value in record.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if key in ("step", "epoch", "event") or not number:
                continue
            if event == "eval" and key == "lr":
                continue
            if event == "eval" and key == "train/loss":
                key = "train/loss_mean"
            curves.setdefault(key, []).append((record["step"], value))
    return curves


def _mlflow_run(run: Path):
    from mlflow.tracking import MlflowClient

    recorded = json.loads((run / "run.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=recorded["tracking_uri"])
    return client, client.get_run(recorded["run_id"])


def _mlflow_curves(client, mlflow_run) -> dict[str, list[tuple[int, float]]]:
    run_id = mlflow_run.info.run_id
    return {
        key: [(point.step, point.value) for point in client.get_metric_history(run_id, key)]
        for key in mlflow_run.data.metrics
    }


@pytest.mark.slow
def test_mlflow_holds_the_curves_of_metrics_jsonl(tiny_profile, tmp_path: Path, mlflow_env, capsys) -> None:
    run = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_run(tiny_profile(train=TRAIN), run)

    client, mlflow_run = _mlflow_run(run)
    expected = _metrics_jsonl_curves(run)
    per_eval = {"train/loss_mean", "train/uar", "val/loss", "val/uar", "samples_per_s", "peak_memory_mb"}
    assert {"lr", "train/loss"} | per_eval <= expected.keys()
    assert [step for step, _ in expected["train/loss"]] == [1, 2, 3, 4, 5, 6]
    assert _mlflow_curves(client, mlflow_run) == expected  # every key, step and value: exactly

    # the store is in the run directory, one experiment named after profile and model, the run finished
    recorded = json.loads((run / "run.json").read_text())["mlflow"]
    assert recorded["tracking_uri"] == (run / "mlruns").resolve().as_uri()
    assert client.get_experiment(mlflow_run.info.experiment_id).name == f"tiny-test/{MODEL_KEY}"
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.info.run_name == "run"
    assert mlflow_run.data.tags["lexiedge.run_dir"] == str(run.resolve())
    params = mlflow_run.data.params  # the settings, as the profile names them, once
    assert params["train.lr"] == "0.01" and params["train.trackers"] == '["tensorboard", "mlflow"]'
    assert params["model.plugin"] == "tiny-av" and params["device.kind"] == "cpu"
    assert (run / "tb").is_dir()  # TensorBoard too

    # the console says how to open it, and nothing else about MLflow (no warning, no log line)
    lines = capsys.readouterr().err.replace(str(tmp_path), "TMP").splitlines()
    hint = f"MLflow: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {recorded['tracking_uri']}"
    assert hint.replace(str(tmp_path), "TMP") in lines
    assert [line for line in lines if "mlflow" in line.lower()] == [hint.replace(str(tmp_path), "TMP")], lines
    assert not [w for w in caught if "mlflow" in str(w.filename)], [str(w.message) for w in caught]


@pytest.mark.slow
def test_a_resumed_run_logs_to_the_same_mlflow_run(tiny_profile, tmp_path: Path, mlflow_env) -> None:
    profile, run = tiny_profile(train=TRAIN), tmp_path / "run"
    train_run(profile, run)
    first_id = json.loads((run / "run.json").read_text())["mlflow"]["run_id"]

    train_run(profile, run, resume=True, overrides=[f"models.{MODEL_KEY}.train.epochs=2"])  # 6 more steps

    assert json.loads((run / "run.json").read_text())["mlflow"]["run_id"] == first_id
    client, mlflow_run = _mlflow_run(run)
    assert mlflow_run.info.run_id == first_id and mlflow_run.info.status == "FINISHED"
    assert len(client.search_runs([mlflow_run.info.experiment_id])) == 1
    expected = _metrics_jsonl_curves(run)
    assert [step for step, _ in expected["train/loss"]] == list(range(1, 13))
    assert _mlflow_curves(client, mlflow_run) == expected


def test_mlflow_not_installed_is_one_line_before_anything_loads(tiny_profile, tmp_path: Path, cli,
                                                                monkeypatch) -> None:
    monkeypatch.setattr(trackers, "mlflow_installed", lambda: False)
    run = tmp_path / "run"
    result = cli("train", "--profile", str(tiny_profile()), "--out", str(run),
                 "--set", f"models.{MODEL_KEY}.train.trackers=[tensorboard,mlflow]")
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [
        f"error: models.{MODEL_KEY}.train.trackers asks for mlflow, which is not installed: "
        "pip install 'lexiedge[mlflow]'"
    ]
    assert not run.exists()  # refused before the run directory, the data or the model


def test_trackers_setting(tiny_profile) -> None:
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    def chosen(*overrides: str) -> list[str]:
        keys = [f"models.{MODEL_KEY}.train.{text}" for text in overrides]
        profile = load_profile(tiny_profile(), keys, host=get_host())
        return profile.model(MODEL_KEY).train.settings.trackers

    assert chosen() == ["tensorboard"]
    assert chosen("trackers=[tensorboard,mlflow]") == ["tensorboard", "mlflow"]
    assert chosen("trackers=mlflow") == chosen("trackers=[mlflow,mlflow]") == ["mlflow"]
    assert chosen("trackers=[]") == []
    with pytest.raises(ProfileError, match="trackers"):
        chosen("trackers=[wandb]")
    with pytest.raises(ProfileError, match="unknown key"):  # the boolean this list replaced
        chosen("tensorboard=false")


def test_tracking_uri_setting_then_environment_then_the_run_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    in_run = (tmp_path / "run" / "mlruns").resolve().as_uri()
    assert mlflow_tracking.tracking_uri(None, tmp_path / "run") == in_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert mlflow_tracking.tracking_uri(None, tmp_path / "run") == "http://mlflow.example:5000"
    monkeypatch.chdir(tmp_path)
    shared = (tmp_path / "shared" / "mlruns").resolve().as_uri()
    assert mlflow_tracking.tracking_uri("shared/mlruns", tmp_path / "run") == shared
    assert mlflow_tracking.tracking_uri("sqlite:///m.db", tmp_path / "run") == "sqlite:///m.db"
    assert mlflow_tracking.open_hint("http://mlflow.example:5000", "p/m", "abc") == (
        "MLflow: run abc of experiment 'p/m' at http://mlflow.example:5000"
    )
