"""The numbers of ``metrics.jsonl`` mirrored as one MLflow run (``train.trackers: [..., mlflow]``).

Where: ``train.mlflow_tracking_uri`` if set, else the ``MLFLOW_TRACKING_URI`` environment variable (as
every MLflow client reads it), else a store inside the run directory, ``RUN/mlruns``, so that nothing
is written outside it. That default is MLflow's file store, the one local store the ``mlflow-skinny``
client (the ``mlflow`` extra) writes without a server or a database driver: a ``sqlite:`` store needs
SQLAlchemy, which only the full ``mlflow`` package brings. MLflow 3 keeps the file store in
maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``; lexiedge sets that in its own
process for a ``file:`` store (unless the user set it), and the console line carries it to ``mlflow ui``.

The experiment is ``train.mlflow_experiment``, else ``MLFLOW_EXPERIMENT_NAME``, else ``PROFILE/MODEL``;
the MLflow run is named after the run directory, tagged with its path, and gets the run's settings as
params once. A resumed run continues the MLflow run whose id run.json records (``mlflow.run_id``) and
logs the steps after its checkpoint again: MLflow keeps both values of such a step (it cannot delete
metric values the way TensorBoard purges events), metrics.jsonl keeps the second.

mlflow is imported only by a run that asks for it (the import takes seconds). MLflow 3 also sends usage
telemetry and writes an installation id under ~/.config; lexiedge turns that off unless the user set
``MLFLOW_DISABLE_TELEMETRY`` themselves: training runs offline and writes nothing outside its store.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lexiedge.errors import LexiedgeError
from lexiedge.rundir import MLFLOW_DIR
from lexiedge.train.trackers import curve_points

# MLflow's oldest limit on a param's value (6000 in recent versions): a value this long fits every version
PARAM_VALUE_LIMIT = 500
_PARAMS_PER_CALL = 100  # log_batch's limit
_PARAM_KEY = re.compile(r"[\w./\- :]{1,250}")  # what MLflow accepts as a param name
_STATUS = {"completed": "FINISHED", "failed": "FAILED", "stopped": "KILLED"}  # run.json's final status -> MLflow's
_SERVERS = ("http", "https", "databricks", "databricks-uc", "uc")  # opened in a browser, not with mlflow ui


def tracking_uri(setting: str | None, run_dir: Path) -> str:
    """The store a run logs to: the setting, else ``MLFLOW_TRACKING_URI``, else ``RUN/mlruns``.

    A plain path (the default, or ``mlruns`` in a setting) becomes an absolute ``file:`` URI, so that the
    console line works from any directory.
    """
    uri = setting or os.environ.get("MLFLOW_TRACKING_URI") or str(run_dir / MLFLOW_DIR)
    scheme = urlparse(uri).scheme
    if uri not in _SERVERS and len(scheme) <= 1:  # no scheme, or a Windows drive letter
        return Path(uri).expanduser().resolve().as_uri()
    return uri


def experiment_name(setting: str | None, profile: str, model_key: str) -> str:
    return setting or os.environ.get("MLFLOW_EXPERIMENT_NAME") or f"{profile}/{model_key}"


def open_hint(uri: str, experiment: str, run_id: str) -> str:
    """The console line that says how to look at the run."""
    scheme = urlparse(uri).scheme or uri
    if scheme in _SERVERS:
        return f"MLflow: run {run_id} of experiment {experiment!r} at {uri}"
    allow = "MLFLOW_ALLOW_FILE_STORE=true " if scheme == "file" else ""  # or MLflow 3 refuses a file store
    return f"MLflow: {allow}mlflow ui --backend-store-uri {uri}"


def param_values(settings: Mapping[str, Any]) -> dict[str, str]:
    """Flat settings as MLflow params: JSON text (``null``, ``true``, ``[...]``), cut to the value limit."""
    params = {}
    for key, value in settings.items():
        if _PARAM_KEY.fullmatch(key):  # a user's odd key (from a plugin's free-form mapping) is left out
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            params[key] = text[:PARAM_VALUE_LIMIT]
    return params


class MLflowScalars:
    """One MLflow run receiving every curve point metrics.jsonl gets (see the module docstring)."""

    def __init__(self, uri: str, *, experiment: str, run_name: str, resume_run_id: str | None,
                 params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before mlflow is imported (see above)
        if urlparse(uri).scheme == "file":
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # read when the store is opened
        from mlflow.entities import Metric, Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self._metric, self._param = Metric, Param
        self.uri, self.experiment = uri, experiment
        try:
            self._client = MlflowClient(tracking_uri=uri)
            self.run_id = self._continue(resume_run_id) or self._start(run_name, params, tags)
            self.experiment_id = self._client.get_run(self.run_id).info.experiment_id
        except MlflowException as exc:  # a bad URI, an unreachable server, a store MLflow refuses: one line
            raise LexiedgeError(f"MLflow cannot log to {uri}: {' '.join(str(exc).split())}") from exc

    def _continue(self, run_id: str | None) -> str | None:
        """The recorded run, running again, if this store has it (a resume); else None."""
        from mlflow.exceptions import MlflowException

        if not run_id:
            return None
        try:
            run = self._client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            return None  # another store than the first time (MLFLOW_TRACKING_URI changed): a new run there
        if run.info.lifecycle_stage != "active":
            return None  # deleted in the UI
        self._client.update_run(run_id, status="RUNNING")
        return run_id

    def _start(self, run_name: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        experiment = self._client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            experiment_id = self._client.create_experiment(self.experiment)
        run_id = self._client.create_run(experiment_id, run_name=run_name, tags=dict(tags)).info.run_id
        items = [self._param(key, value) for key, value in param_values(params).items()]
        for first in range(0, len(items), _PARAMS_PER_CALL):
            self._client.log_batch(run_id, params=items[first:first + _PARAMS_PER_CALL])
        return run_id

    def hint(self) -> str:
        return open_hint(self.uri, self.experiment, self.run_id)

    def log(self, record: dict[str, Any]) -> None:
        stamp = int(time.time() * 1000)
        step = record.get("step")
        metrics = [self._metric(key, float(value), stamp, step) for key, value in curve_points(record)]
        if metrics:  # one call per record: a step's line is one request to a tracking server
            self._client.log_batch(self.run_id, metrics=metrics)

    def close(self, status: str = "completed") -> None:
        self._client.set_terminated(self.run_id, status=_STATUS.get(status, "FINISHED"))
