"""Training runs: where each run directory goes, what it records first, and how a resume continues.

``train`` writes ``runs/<profile>/<model>/<timestamp>/`` (or ``--out``), starting with the resolved
profile of that one model (``profile.yaml``) so that every later stage (merge, export, resume) can
rebuild exactly what was trained from the run directory alone (the layout: :mod:`lexiedge.rundir`).
Inputs are checked (data, trackers) before any model loads; the trainer plugin does the training.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from lexiedge import atomic
from lexiedge.api import TrainJob, TrainResult
from lexiedge.errors import UsageError
from lexiedge.plugin import get_host
from lexiedge.profile import Profile, validate_profile
from lexiedge.rundir import LOCK_FILE, PROFILE_YAML, RUNS_DIR, load_run_profile, newest_run, profile_file, run_lock
from lexiedge.train.trackers import check_trackers


def single_model_profile(profile: Profile, model_key: str) -> Profile:
    """The profile restricted to one model: what a run directory records."""
    profile.model(model_key)  # fails with the list of models when absent
    raw = dict(profile.raw)
    raw["models"] = {model_key: profile.raw["models"][model_key]}
    return validate_profile(raw, profile.source, host=get_host())


@dataclass
class TrainRequest:
    profile: Profile
    model_keys: list[str]
    data: dict[str, Path | None]
    out: Path | None
    resume: bool
    allow_changes: bool = False  # with resume: continue with settings or data other than the recorded ones
    on_evaluate: Callable[[dict[str, Any]], None] | None = None  # see TrainJob.on_evaluate (lexiedge tune)
    evaluate_test: bool = True  # False: the test split is never evaluated (a search's trials)


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
    """Train each requested model into its run directory, holding the directory's lock throughout.

    A run that --resume finds already finished is reported ("already finished at step N") and left
    alone: it is not in the returned list.
    """

    host = get_host()
    for model_key in request.model_keys:  # a tracker that is not installed: refused before anything loads
        settings = request.profile.model(model_key).train.settings
        check_trackers(getattr(settings, "trackers", ()), f"models.{model_key}.train.trackers")
    results = []
    for model_key in request.model_keys:
        run_dir = run_dir_for(request, model_key)
        if request.resume:
            load_run_profile(run_dir)  # a missing run is refused before the lock would create its directory
        else:  # bad data is refused before the run directory exists and before any model loads
            _check_data(host, request.profile.model(model_key), request.data.get(model_key))
        made = _made_by_this_run(run_dir)  # removed again if training never starts
        with run_lock(run_dir, enabled=_rank() == 0), _removed_unless_started(run_dir, made, request.resume):
            if request.resume:
                profile, data_path = _resume_settings(request, model_key, run_dir, console)
                if profile is None:
                    continue
            else:
                profile, data_path = single_model_profile(request.profile, model_key), request.data.get(model_key)
                if _rank() == 0:
                    if any(path.name != LOCK_FILE for path in run_dir.iterdir()):
                        raise UsageError(
                            f"{run_dir} exists and is not empty; use --resume to continue it or another --out"
                        )
                    atomic.write_text(
                        profile_file(run_dir), f"# resolved from {profile.source}\n{profile.to_yaml()}", fsync=True
                    )
            entry = profile.model(model_key)
            if request.resume:
                _check_data(host, entry, data_path)
            job = TrainJob(
                profile=profile,
                model_key=model_key,
                entry=entry,
                model_plugin=host.models.get(entry.model.plugin),
                data_plugin=host.datasets.get(entry.data.plugin),
                data_path=data_path,
                run_dir=run_dir,
                resume=request.resume,
                console=console,
                on_evaluate=request.on_evaluate,
                evaluate_test=request.evaluate_test,
            )
            console.print(f"[bold]train[/] {model_key} with profile {profile.name} -> {run_dir}")
            results.append(host.trainers.get(entry.train.plugin).fit(job))
    return results


def _made_by_this_run(run_dir: Path) -> list[Path]:
    """What a new run creates before training starts: profile.yaml, run.lock unless it was there, and
    ``run_dir`` and those of its parents that do not exist yet (deepest first)."""
    made = [run_dir / PROFILE_YAML]
    if not (run_dir / LOCK_FILE).exists():
        made.append(run_dir / LOCK_FILE)
    for folder in (run_dir, *run_dir.parents):
        if folder.exists():
            break
        made.append(folder)
    return made


@contextmanager
def _removed_unless_started(run_dir: Path, made: list[Path], resume: bool) -> Iterator[None]:
    """A new run refused before training starts (the data plugin found nothing usable, Ctrl-C while it
    decoded) leaves nothing behind: its folder would become the newest run that `export --profile` and
    `--resume` pick, without weights. Started means the engine wrote run.json; until then the folder
    holds only profile.yaml and run.lock, and what this run made of those is removed."""
    try:
        yield
    except BaseException:
        unstarted = run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {PROFILE_YAML, LOCK_FILE}
        if not resume and _rank() == 0 and unstarted:
            for path in made:  # files first, then folders deepest first; a folder someone else filled stays
                with suppress(OSError):
                    path.rmdir() if path.is_dir() else path.unlink(missing_ok=True)
        raise


def _check_data(host, entry, data_path: Path | None) -> None:
    """The data plugin's cheap checks of the data (it exists, something in it is usable), before the model."""
    host.datasets.get(entry.data.plugin).check_source(entry.data.settings, data_path)


def _resume_settings(
    request: TrainRequest, model_key: str, run_dir: Path, console: Console
) -> tuple[Profile | None, Path | None]:
    """The profile and data a resume trains with (None when the run is already finished).

    Refuses what the run was not trained with unless --allow-changes (see :mod:`lexiedge.train.resume`);
    an allowed change (or more epochs) replaces profile.yaml and is recorded in run.json.
    """
    from lexiedge.train.resume import DATA_KEY, compare, plan_resume
    from lexiedge.train.run_files import CHANGES, RunFiles, now_iso

    recorded, _ = load_run_profile(run_dir)
    requested = single_model_profile(request.profile, model_key)
    files = RunFiles(run_dir, enabled=_rank() == 0)
    info = files.read_run_json()
    recorded_data = info.get("data_path") if isinstance(info.get("data_path"), str) else None
    changes = compare(recorded, requested, model_key, recorded_data, request.data.get(model_key))
    plan = plan_resume(run_dir, model_key, changes, info, requested, allow_changes=request.allow_changes)
    if plan.finished_at_step is not None:
        epochs = requested.model(model_key).train.settings
        console.print(
            f"{model_key}: {run_dir} already finished at step {plan.finished_at_step}; nothing to resume "
            f"(to train longer: --resume --set models.{model_key}.train.epochs=N with N above {epochs.epochs})",
            markup=False, highlight=False, soft_wrap=True,
        )
        return None, None
    changed_data = next((c.new for c in plan.changes if c.key == DATA_KEY), None)
    data_path = Path(changed_data) if changed_data else (Path(recorded_data) if recorded_data else None)
    if plan.changes and _rank() == 0:
        atomic.write_text(
            profile_file(run_dir), f"# resolved from {requested.source}\n{requested.to_yaml()}", fsync=True
        )
        # at_step: the step training goes on from, which only the engine knows (the newest *intact*
        # checkpoint); RunFiles.start fills it in
        change = {"at_step": None, "time": now_iso(), "changes": plan.record}
        files.info = {**info, CHANGES: [*(info.get(CHANGES) or []), change]}
        files.write_run_json()
        for line in (c.describe() for c in plan.changes):
            console.print(f"resuming with a change: {line}", style="yellow", markup=False, highlight=False,
                          soft_wrap=True)
        return requested, data_path
    return (requested if plan.changes else recorded), data_path
