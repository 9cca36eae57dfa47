"""A tune folder: the one module that knows its layout.

``lexiedge tune`` writes ``runs/<profile>/<model>/tune-<timestamp>/`` (or ``--out``)::

    profile.yaml        the resolved profile of the one model searched (after extends and --set): every trial
                        loads it with its own --set lines, so a resumed search trains what the first part did
    tune.json           the request (space, metric, seed, pruner, data) and, after each trial, the trials and
                        the best one; what `--json` prints
    study.db            Optuna's study (SQLite): what --resume continues
    study.png           the metric of each trial, the best so far, and the parameters' importances
    trials/0003/        trial 3's run directory (`lexiedge train`'s layout: export or eval it as any run)
    trials/0003.log     what its training printed
    run.lock            the writer's pid, held with an OS lock (:func:`lexiedge.rundir.run_lock`)

The trials live below ``tune-*/``, so `lexiedge train --resume` and the newest-run lookups (which read
``runs/<profile>/<model>/<timestamp>/``) never take a tune folder or a trial for a training run.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lexiedge import atomic
from lexiedge.errors import UsageError
from lexiedge.rundir import RUNS_DIR, run_lock

PREFIX = "tune-"
PROFILE_YAML = "profile.yaml"
TUNE_JSON = "tune.json"
STUDY_DB = "study.db"
STUDY_PNG = "study.png"
TRIALS_DIR = "trials"


def new_folder(profile_name: str, model_key: str, runs_dir: Path = RUNS_DIR) -> Path:
    return runs_dir / profile_name / model_key / f"{PREFIX}{time.strftime('%Y%m%d-%H%M%S')}"


def newest_folder(profile_name: str, model_key: str, runs_dir: Path = RUNS_DIR) -> Path:
    parent = runs_dir / profile_name / model_key
    found = (
        sorted(p for p in parent.glob(f"{PREFIX}*") if (p / TUNE_JSON).is_file()) if parent.is_dir() else []
    )
    if not found:
        raise UsageError(
            f"no search of {model_key!r} with profile {profile_name!r} under {parent} to resume; "
            "start one without --resume"
        )
    return found[-1]


def trial_dir(folder: Path, number: int) -> Path:
    return folder / TRIALS_DIR / f"{number:04d}"


def trial_log(folder: Path, number: int) -> Path:
    return folder / TRIALS_DIR / f"{number:04d}.log"


def storage_url(folder: Path) -> str:
    return f"sqlite:///{(folder / STUDY_DB).resolve()}"


def read_record(folder: Path) -> dict[str, Any]:
    path = folder / TUNE_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"{path} cannot be read ({exc}); is {folder} a folder `lexiedge tune` wrote?"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("request"), dict):
        raise UsageError(
            f"{path} is not a tune record (no `request`); is {folder} a folder `lexiedge tune` wrote?"
        )
    return record


def write_record(folder: Path, record: dict[str, Any]) -> Path:
    return atomic.write_json(folder / TUNE_JSON, record, fsync=True)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """One search writes a tune folder at a time (the kernel drops the lock however the process ends)."""
    with run_lock(folder):
        yield
