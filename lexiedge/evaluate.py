"""`lexiedge eval`: the task metric of runs and artifacts, side by side in one table.

Each path is a run directory (scored in PyTorch from its best weights) or an artifact directory
(scored through :mod:`lexiedge.runtime`, as an app runs it). The evaluator plugin of their task
does the scoring; this module resolves the paths, checks they share one task, runs each, and
writes ``eval.json`` (every number) beside the evaluator's own files (confusion matrices, ...).
The first row is the reference: every other row shows its difference on the primary metric.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexiedge import atomic
from lexiedge.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from lexiedge.api import EvalResult, EvaluatorPlugin
    from lexiedge.profile import Profile

EVAL_JSON = "eval.json"
EVALS_DIR = Path("evals")
RUN, ARTIFACT = "run", "artifact"


@dataclass(frozen=True)
class EvalReport:
    path: Path  # eval.json
    task: str
    primary_metric: str
    results: list[EvalResult]


@dataclass(frozen=True)
class EvalTarget:
    path: Path
    kind: str  # RUN or ARTIFACT
    task: str


def resolve_target(path: Path) -> EvalTarget:
    """What ``path`` is (a run or an artifact) and the task of its model; one line when it is neither."""
    from lexiedge.runtime import ArtifactError, read_manifest

    if not path.exists():
        raise UsageError(f"{path}: no such run or artifact directory")
    if not path.is_dir():
        raise UsageError(f"{path} is a file; pass a run directory (runs/...) or an artifact directory (artifacts/...)")
    if (path / "manifest.json").is_file():
        try:
            manifest = read_manifest(path)
        except ArtifactError as exc:
            raise UsageError(str(exc)) from None
        return EvalTarget(path, ARTIFACT, str(manifest.get("task", "")))
    from lexiedge.rundir import is_run_dir, load_run_profile

    if not is_run_dir(path):
        raise UsageError(
            f"{path}: neither a run directory (no profile.yaml) nor an artifact directory (no manifest.json)"
        )
    from lexiedge.export.steps import check_run_has_weights

    profile, model_key = load_run_profile(path)
    check_run_has_weights(path, profile, model_key, action="evaluate")  # as export trusts them, no further
    return EvalTarget(path, RUN, profile.model(model_key).task)


def evaluator_for(task: str) -> EvaluatorPlugin:
    from lexiedge.plugin import get_host

    registry = get_host().evaluators
    for name in registry.names():
        if task in registry.get_class(name).tasks:
            return registry.get(name)
    raise UsageError(f"no evaluator for task {task!r} is installed (evaluators: {', '.join(registry.names()) or 'none'})")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "target"


def evaluate(
    paths: list[Path],
    *,
    data: Path | None,
    split: str,
    out: Path | None,
    limit: int | None,
    console: Console,
    enroll: str | None = None,
    ensemble: bool = False,
) -> EvalReport:
    """Score every path with its task's evaluator; write ``<out>/eval.json``. ``enroll``: each speaker's
    enrollment clips (``neutral`` or a count) give speaker-normalising runs their profile, not scored.
    ``ensemble``: the paths are one model's members; a last row scores the mean of their probabilities."""
    from lexiedge.api import EnsembleMember, EvalRequest

    if not paths:
        raise UsageError("pass at least one run or artifact directory")
    if ensemble and len(paths) < 2:
        raise UsageError(f"--ensemble combines 2 or more runs or artifacts; got {len(paths)}")
    if data is not None and not data.exists():
        raise UsageError(f"--data {data}: no such file or folder")
    targets = [resolve_target(path) for path in paths]  # every path checked before any scoring
    tasks = sorted({target.task for target in targets})
    if len(tasks) > 1:
        raise UsageError(f"the paths are of different tasks ({', '.join(tasks)}); evaluate each task on its own")
    evaluator = evaluator_for(tasks[0])
    out = out or EVALS_DIR / time.strftime("%Y%m%d-%H%M%S")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory")
    out.mkdir(parents=True, exist_ok=True)
    if ensemble:
        console.print(f"[bold]eval[/] an ensemble of {len(targets)} ({tasks[0]}, split {split})", highlight=False)
        results = evaluator.evaluate_ensemble(
            EvalRequest(targets[0].path, data, split, out, console, limit, enroll),
            [EnsembleMember(target.path, target.kind) for target in targets],
        )
        targets = [*targets, EvalTarget(out, "ensemble", tasks[0])]  # the last row: the ensemble itself
    else:
        results = [_evaluate_one(evaluator, index, target, data, split, out, limit, enroll, console)
                   for index, target in enumerate(targets)]
    summary = {**_summary(evaluator, targets, results, data, split), "enroll": enroll, "ensemble": ensemble}
    path = out / EVAL_JSON
    atomic.write_json(path, summary)
    return EvalReport(path, tasks[0], evaluator.primary_metric, results)


def _evaluate_one(evaluator: EvaluatorPlugin, index: int, target: EvalTarget, data: Path | None, split: str,
                  out: Path, limit: int | None, enroll: str | None, console: Console) -> EvalResult:
    from lexiedge.api import EvalRequest

    where = out / f"{index:02d}-{_slug(target.path.name if target.kind == ARTIFACT else 'run-' + target.path.name)}"
    where.mkdir(parents=True, exist_ok=True)
    request = EvalRequest(target.path, data, split, where, console, limit, enroll)
    console.print(f"[bold]eval[/] {target.kind} {target.path} ({target.task}, split {split})", highlight=False)
    run = evaluator.evaluate_run if target.kind == RUN else evaluator.evaluate_artifact
    return run(request)


def _summary(evaluator: EvaluatorPlugin, targets: list[EvalTarget], results: list[EvalResult],
             data: Path | None, split: str) -> dict[str, Any]:
    primary = evaluator.primary_metric
    reference = results[0].metrics.get(primary)
    rows = []
    for target, result in zip(targets, results):
        row = {"path": str(target.path), **asdict(result)}
        value = result.metrics.get(primary)
        row["delta_vs_first"] = None if reference is None or value is None else value - reference
        rows.append(row)
    return {"task": targets[0].task, "evaluator": evaluator.name, "primary_metric": primary, "split": split,
            "data": str(data) if data else None, "results": rows}


def print_table(results: list[EvalResult], primary: str, console: Console) -> None:
    """One row per run or artifact; the primary metric first, then its difference from the first row."""
    from rich.table import Table

    keys = [primary] + [key for key in results[0].metrics if key != primary]
    table = Table(title=None, show_lines=False)
    table.add_column("evaluated")
    table.add_column("kind")
    for key in keys:
        table.add_column(key, justify="right")
    table.add_column(f"Δ {primary}", justify="right")
    reference = results[0].metrics.get(primary)
    for result in results:
        value = result.metrics.get(primary)
        delta = "" if result is results[0] or value is None or reference is None else f"{value - reference:+.3f}"
        table.add_row(result.name, result.kind, *(_cell(result.metrics.get(key)) for key in keys), delta)
    # never squeezed into a narrow terminal or an 80-column pipe: cut names and numbers would mislead
    from rich.console import Console

    natural = console.measure(table, options=console.options.update_width(1000)).maximum
    Console(file=console.file, width=max(console.width, natural), highlight=False).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)


def folds_recipe(paths: list[Path], *, profile: str | None, model: str | None, overrides: list[str],
                 data: Path | None) -> tuple[Profile, str, Path | None]:
    """What `lexiedge eval --folds` cross-validates: ``--profile``/``--model`` (+ ``--set``), or the recipe
    of one run directory (its profile.yaml, + ``--set``; its recorded data unless ``--data``)."""
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    if paths and profile:
        raise UsageError("--folds cross-validates one recipe: pass --profile (and --model) or one run "
                         "directory, not both")
    if len(paths) > 1:
        raise UsageError(f"--folds cross-validates one recipe; got {len(paths)} paths (pass one run)")
    if paths:
        from lexiedge.rundir import is_run_dir, load_run_profile, profile_file, recorded_data_path

        run = paths[0]
        if not run.is_dir() or not is_run_dir(run):
            raise UsageError(f"{run}: not a run directory (no profile.yaml); --folds takes a run's recipe")
        recorded, model_key = load_run_profile(run)
        if model is not None and model != model_key:
            raise UsageError(f"{run} trained {model_key!r}, not {model!r}")
        loaded = load_profile(profile_file(run), overrides, host=get_host())
        return loaded, model_key, data if data is not None else recorded_data_path(run)
    if profile is None:
        raise UsageError("--folds needs the recipe to cross-validate: --profile NAME --model MODEL (or a run "
                         "directory)")
    loaded = load_profile(profile, overrides, host=get_host())
    if model is None:
        if len(loaded.models) != 1:
            raise UsageError(f"--folds needs --model: profile {loaded.name!r} has {', '.join(loaded.models)}")
        model = next(iter(loaded.models))
    loaded.model(model)
    return loaded, model, data
