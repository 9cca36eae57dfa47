"""The pipeline stages, each reading and writing a directory.

``train`` writes ``runs/<profile>/<model>/<timestamp>/`` (or ``--out``), starting with the resolved
profile of that one model (``profile.yaml``) so that every later stage (merge, export, resume) can
rebuild exactly what was trained from the run directory alone.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from lexiedge.api import TrainJob, TrainResult
from lexiedge.errors import UsageError
from lexiedge.plugin import get_host
from lexiedge.profile import Profile, load_profile, validate_profile

RUNS_DIR = Path("runs")
RUN_PROFILE = "profile.yaml"


def write_text_atomic(path: Path, text: str) -> None:
    """Write a whole file or nothing: temp file in the same directory, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def single_model_profile(profile: Profile, model_key: str) -> Profile:
    """The profile restricted to one model: what a run directory records."""
    profile.model(model_key)  # fails with the list of models when absent
    raw = dict(profile.raw)
    raw["models"] = {model_key: profile.raw["models"][model_key]}
    return validate_profile(raw, profile.source)


def load_run_profile(run_dir: Path) -> tuple[Profile, str]:
    """The profile a run was trained with, and its model key."""
    path = run_dir / RUN_PROFILE
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise UsageError(f"{run_dir}: not a lexiedge run directory (no {RUN_PROFILE})")
    profile = load_profile(path)
    (model_key,) = profile.models
    return profile, model_key


def newest_run(profile_name: str, model_key: str, runs_dir: Path = RUNS_DIR) -> Path:
    parent = runs_dir / profile_name / model_key
    runs = sorted(p for p in parent.glob("*") if (p / RUN_PROFILE).is_file()) if parent.is_dir() else []
    if not runs:
        raise UsageError(f"no run of {model_key!r} with profile {profile_name!r} under {parent}; train one first")
    return runs[-1]


def newest_runs(runs_dir: Path = RUNS_DIR) -> dict[str, Path]:
    """The newest run of every model under ``runs_dir``, whatever its profile (``runs/<profile>/<model>/<time>``)."""
    newest: dict[str, Path] = {}
    for run in runs_dir.glob(f"*/*/*/{RUN_PROFILE}") if runs_dir.is_dir() else []:
        run_dir = run.parent
        model_key = run_dir.parent.name
        if model_key not in newest or run_dir.name > newest[model_key].name:
            newest[model_key] = run_dir
    return newest


@dataclass
class TrainRequest:
    profile: Profile
    model_keys: list[str]
    data: dict[str, Path | None]
    out: Path | None
    resume: bool


def parse_data_args(values: list[str], model_keys: list[str]) -> dict[str, Path | None]:
    """``--data PATH`` applies to every selected model; ``--data MODEL=PATH`` to one."""
    data: dict[str, Path | None] = dict.fromkeys(model_keys)
    for value in values:
        key, sep, path = value.partition("=")
        if sep and key in model_keys:
            data[key] = Path(path)
        elif sep and not Path(value).exists():
            raise UsageError(f"--data {value}: {key!r} is not a model being trained ({', '.join(model_keys)})")
        else:
            for model_key in model_keys:
                data[model_key] = Path(value)
    for key, path in data.items():
        if path is not None and not path.exists():
            raise UsageError(f"--data for {key}: {path} does not exist")
    return data


def run_dir_for(request: TrainRequest, model_key: str) -> Path:
    if request.out is not None:
        return request.out / model_key if len(request.model_keys) > 1 else request.out
    if request.resume:
        return newest_run(request.profile.name, model_key)
    return RUNS_DIR / request.profile.name / model_key / _run_stamp()


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _run_stamp() -> str:
    """The run directory's name: the start time; under torchrun, the launcher's, so every rank agrees."""
    started = time.time()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import psutil

        started = psutil.Process(os.getppid()).create_time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(started))


def train(request: TrainRequest, console: Console) -> list[TrainResult]:
    host = get_host()
    results = []
    for model_key in request.model_keys:
        run_dir = run_dir_for(request, model_key)
        if request.resume:
            profile, _ = load_run_profile(run_dir)
        else:
            profile = single_model_profile(request.profile, model_key)
            if _rank() == 0:  # under torchrun, rank 0 owns the run directory
                if run_dir.exists() and any(run_dir.iterdir()):
                    raise UsageError(f"{run_dir} exists and is not empty; use --resume to continue it or another --out")
                write_text_atomic(run_dir / RUN_PROFILE, f"# resolved from {profile.source}\n{profile.to_yaml()}")
        entry = profile.model(model_key)
        job = TrainJob(
            profile=profile,
            model_key=model_key,
            entry=entry,
            model_plugin=host.models.get(entry.model.plugin),
            data_plugin=host.datasets.get(entry.data.plugin),
            data_path=request.data.get(model_key),
            run_dir=run_dir,
            resume=request.resume,
            console=console,
        )
        console.print(f"[bold]train[/] {model_key} with profile {profile.name} -> {run_dir}")
        results.append(host.trainers.get(entry.train.plugin).fit(job))
    return results
