"""Speaker-grouped k-fold cross-validation of a training recipe: the one home of the protocol.

`lexiedge eval --folds K`, `lexiedge tune --folds K` and ``bench/bench_ravdess_speech.py --folds K`` all
call :func:`cross_validate`. The protocol:

- **Groups.** The data plugin declares the groups its examples come in (:meth:`DatasetPlugin.groups`:
  RAVDESS's actors, a generic set's speaker column). Folds are made of whole groups, so no speaker is
  ever in the training and the test side of one fold. A data set without groups refuses ``--folds``.
- **Folds.** The sorted groups are cut into K contiguous, near-equal blocks; fold ``i`` tests on block
  ``i`` and trains on the rest (RAVDESS actors 1-20, K = 5: actors 1-4, 5-8, ...; each block holds two
  male and two female actors, as RAVDESS alternates them). How a fold becomes the data plugin's split
  is the plugin's business (:meth:`DatasetPlugin.fold_overrides`; RAVDESS: ``data.split``).
- **No peeking at the test fold.** The test fold is never evaluated during training, so nothing is
  chosen on it. With ``val_groups = 0`` (the default) a fold trains for the recipe's fixed number of
  epochs on all its training groups and is scored with its final weights: the epoch count is part of
  the recipe, chosen beforehand (on the quick RAVDESS split 1-12 -> 13-16, or on inner folds). With
  ``val_groups = N`` the N training groups that follow the test block (wrapping around) become an
  inner validation split: the best epoch by the trainer's metric on them is the checkpoint scored
  (what early stopping on held-out speakers costs: they no longer train).
- **Normalisation.** Whatever a model measures on its data before training (feature statistics,
  :meth:`ModelPlugin.fit_to_data`) is measured on the fold's training split only.
- **Seeds.** Every fold is trained once per seed (``train.seed``); the report gives mean ± sd over all
  fold x seed runs, each seed's mean over folds, and each seed's pooled score (the confusion matrices
  of its folds summed: every clip scored once, by the model that never heard its speaker).
- **Enrollment** (``enroll``: ``neutral`` or a clip count; the data plugin's enrollment clips). Each
  test speaker's enrollment clips give a speaker-normalising model its speaker's profile, and are left
  out of the scored clips for every model, so a recipe scored with and without enrollment is scored on
  the same clips. A recipe already cross-validated is only scored again (``results/...-enroll-E.json``,
  ``crossval-enroll-E.json``); a speaker-normalising recipe trains with ``data.enrollment`` in it.
- **Seed ensembles** (``ensemble``, 2+ seeds). Each fold is also scored by the mean of its seed models'
  class probabilities (:meth:`EvaluatorPlugin.evaluate_ensemble`), on the same clips: what shipping the
  seeds as one model (`lexiedge ensemble`) scores on speakers none of them heard. The report adds its
  mean ± sd over folds and its pooled score; ``results/fold-F-ensemble-seeds-...json`` keeps each fold's.
- **Distillation** (a recipe with ``train.distill.teachers``, the classifier trainer's). A teacher that
  is a cross-validation folder becomes its finished runs of the fold with the same training and test
  speakers, so a fold's student never learns from a model that heard its test speakers; a folder
  without that fold is refused for every fold before any trains.
- **Resumable.** Runs go one after the other into ``OUT/fold-F-seed-S/``; a finished one's scores are
  written to ``OUT/results/fold-F-seed-S.json`` (atomically) and never recomputed. After a kill, the
  same command continues: finished runs are kept, the interrupted one resumes from its last checkpoint
  (``lexiedge train --resume``). ``OUT/crossval-plan.json`` records the recipe; another recipe in the same
  folder is refused. More seeds may be added to a finished cross-validation.
- **Spread over processes** (``only_folds``, `lexiedge eval --fold F`). Each process trains and scores its
  folds on one shared ``OUT`` (``crossval-folds-F....json`` reports what it ran); the same command without
  ``--fold`` then keeps every finished run and writes the whole report. A fold being trained by another
  process is refused in one line, never removed or trained twice. A distilled fold does not wait for its
  teachers: their run of the fold must be finished when it starts (one line if not).

Core code: no model and no data format here, only the plugins' contracts (:mod:`lexiedge.api`).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexiedge import atomic
from lexiedge.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from lexiedge.api import DatasetPlugin
    from lexiedge.profile import Profile

Group = int | str  # a speaker id: RAVDESS actor numbers, or a generic set's speaker names
PLAN_JSON = "crossval-plan.json"
REPORT_JSON = "crossval.json"
RESULTS_DIR = "results"
METRICS = ("uar", "war", "macro_f1")


@dataclass(frozen=True)
class Fold:
    """One fold: the groups it trains, validates (inner validation, may be empty) and tests on."""

    index: int  # 0-based; shown 1-based
    train: tuple[Group, ...]
    val: tuple[Group, ...]
    test: tuple[Group, ...]

    @property
    def name(self) -> str:
        return f"fold-{self.index + 1}"


def make_folds(groups: Sequence[Group], k: int, val_groups: int = 0) -> list[Fold]:
    """``k`` folds over the sorted ``groups``: contiguous test blocks of near-equal size (the larger first).

    With ``val_groups`` N, the N training groups that follow the test block (wrapping around) validate.
    """
    ordered = sorted(set(groups), key=_group_order)
    if k < 2:
        raise UsageError(f"--folds {k}: cross-validation needs at least 2 folds")
    if k > len(ordered):
        raise UsageError(
            f"--folds {k} is more than the {len(ordered)} speakers in the data "
            f"({_describe(ordered)}); use at most --folds {len(ordered)}"
        )
    if val_groups < 0 or val_groups > len(ordered) - math.ceil(len(ordered) / k) - 1:
        most = len(ordered) - math.ceil(len(ordered) / k) - 1
        raise UsageError(
            f"--val-groups {val_groups}: with {len(ordered)} speakers in {k} folds, between 0 and "
            f"{max(most, 0)} speakers can validate (at least one must train)"
        )
    base, extra = divmod(len(ordered), k)
    folds, start = [], 0
    for index in range(k):
        size = base + (1 if index < extra else 0)
        test = ordered[start : start + size]
        after = ordered[start + size :] + ordered[:start]  # training groups, those after the test block first
        val, train = after[:val_groups], after[val_groups:]
        folds.append(
            Fold(
                index,
                tuple(sorted(train, key=_group_order)),
                tuple(sorted(val, key=_group_order)),
                tuple(test),
            )
        )
        start += size
    return folds


def _group_order(group: Group) -> tuple[int, int | str]:
    return (0, group) if isinstance(group, int) else (1, str(group))


def _describe(groups: Sequence[Group]) -> str:
    """``actors 1-4`` style for consecutive numbers, else a comma list."""
    if groups and all(isinstance(g, int) for g in groups):
        numbers = [int(g) for g in groups]
        if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
            return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(str(g) for g in groups)


# --- one run of one fold --------------------------------------------------------------------------


@dataclass
class FoldResult:
    """The test scores of one fold trained with one seed."""

    fold: int  # 1-based
    seed: int
    test_groups: list[Group]
    val_groups: list[Group]
    train_groups: list[Group]
    metrics: dict[str, float]  # uar, war, macro_f1 on the test fold
    samples: int
    confusion: list[list[int]]
    checkpoint: str  # "final" (fixed epochs) or "best" (inner validation)
    step: int
    run_dir: str
    extra: dict[str, Any] = field(
        default_factory=dict
    )  # what the scorer added (enrollment, per-class recall)


def result_name(fold: Fold, seed: int, enroll: str | None = None) -> str:
    """The fold's run directory (without ``enroll``) and result file names."""
    return f"{fold.name}-seed-{seed}" + (f"-enroll-{enroll}" if enroll else "")


def fold_profile(
    profile: Profile, model_key: str, data_plugin: DatasetPlugin, fold: Fold, seed: int
) -> Profile:
    """The recipe of ``model_key`` alone, with the fold's split (the data plugin's keys) and train.seed."""
    from lexiedge.plugin import get_host
    from lexiedge.profile import deep_merge, validate_profile

    raw = copy.deepcopy(profile.raw)
    raw["models"] = {model_key: raw["models"][model_key]}
    entry = raw["models"][model_key]
    split = data_plugin.fold_overrides(list(fold.train), list(fold.val), list(fold.test))
    entry["data"] = deep_merge(entry.get("data") or {}, split)
    entry["train"] = {**(entry.get("train") or {}), "seed": seed}
    _fold_teachers(entry["train"], fold)
    return validate_profile(raw, f"{profile.source} ({fold.name}, seed {seed})", host=get_host())


def _fold_teachers(train: dict[str, Any], fold: Fold) -> None:
    """A cross-validation folder among a distilling recipe's teachers (``train.distill.teachers``, the
    classifier trainer's) becomes its finished runs of the fold with the same speakers: a fold's student
    never learns from a teacher that heard its test speakers. Its folds must be this one's (one line if not)."""
    distill = train.get("distill")
    if not isinstance(distill, dict) or not isinstance(distill.get("teachers"), list):
        return
    resolved: list[Any] = []
    for given in distill["teachers"]:
        folder = Path(str(given)).expanduser()
        if not (folder / PLAN_JSON).is_file():
            resolved.append(given)
            continue
        planned = json.loads((folder / PLAN_JSON).read_text(encoding="utf-8")).get("folds") or []
        same = [
            index
            for index, other in enumerate(planned)
            if [list(other.get(side) or []) for side in ("train", "val", "test")]
            == [list(fold.train), list(fold.val), list(fold.test)]
        ]
        if not same:
            raise UsageError(
                f"train.distill.teachers: {given} is a cross-validation without this {fold.name} (training on "
                f"{_describe(fold.train)}, testing on {_describe(fold.test)}); teach with a cross-validation "
                "of the same --folds over the same speakers"
            )
        teacher_fold = replace(fold, index=same[0])
        own_runs = re.compile(rf"{teacher_fold.name}-seed-(\d+)")  # not its -enroll-E rescorings
        finished = sorted(
            (int(match[1]), folder / path.stem)
            for path in (folder / RESULTS_DIR).glob("*.json")
            if (match := own_runs.fullmatch(path.stem))
        )
        if not finished:
            raise UsageError(f"train.distill.teachers: {given} has no finished run of {teacher_fold.name}; finish it first")
        resolved.extend(str(run.resolve()) for _, run in finished)
    distill["teachers"] = resolved


TrainFold = Callable[["Profile", str, "Path | None", Path, bool, "Console"], None]


def train_fold(
    profile: Profile, model_key: str, data: Path | None, run_dir: Path, resume: bool, console: Console
) -> None:
    """`lexiedge train` of one fold into ``run_dir`` (resumed when it has a run already)."""
    from lexiedge import training_runs

    request = training_runs.TrainRequest(
        profile=profile,
        model_keys=[model_key],
        data={model_key: data},
        out=run_dir,
        resume=resume,
        allow_changes=False,
    )
    training_runs.train(request, console)


Scorer = Callable[[Path, "Fold", int], dict[str, Any]]


def test_scores(run_dir: Path, fold: Fold, seed: int) -> dict[str, Any]:
    """The scores the trainer wrote for the test split (``test_metrics.json``)."""
    from lexiedge.rundir import read_test_metrics

    scores = read_test_metrics(run_dir)
    if not all(isinstance(scores.get(key), (int, float)) for key in METRICS):
        raise UsageError(
            f"{run_dir} has no test scores (test_metrics.json with {', '.join(METRICS)}); "
            "the trainer of this model does not score a test split"
        )
    return scores


def enrolled_scores(enroll: str, data: Path | None, console: Console) -> Scorer:
    """A scorer of the test fold with each speaker's enrollment clips (`lexiedge eval --enroll`): they give a
    speaker-normalising model its speakers' profiles, and every model is scored on the other clips only."""

    def score(run_dir: Path, fold: Fold, seed: int) -> dict[str, Any]:
        from lexiedge.api import EvalRequest
        from lexiedge.evaluate import evaluator_for, resolve_target

        target = resolve_target(run_dir)
        out = run_dir / f"eval-enroll-{enroll}"
        out.mkdir(parents=True, exist_ok=True)
        result = evaluator_for(target.task).evaluate_run(
            EvalRequest(run_dir, data, "test", out, console, enroll=enroll)
        )
        details = result.details
        return {
            **{key: result.metrics[key] for key in METRICS},
            "samples": details.get("samples", 0),
            "confusion": details.get("confusion") or [],
            "checkpoint": result.name,
            "step": 0,
            "recall_per_class": details.get("recall_per_class"),
        }

    return score


# --- the whole cross-validation ---------------------------------------------------------------------


@dataclass(frozen=True)
class CrossValRequest:
    profile: Profile
    model_key: str
    data: Path | None
    folds: int
    out: Path
    seeds: tuple[int, ...] = (0,)
    val_groups: int = 0
    exclude_groups: tuple[Group, ...] = ()  # in no fold (`lexiedge tune --folds`: the final test speakers)
    enroll: str | None = (
        None  # score with each speaker's enrollment clips (and without them in the scored clips)
    )
    ensemble: bool = False  # also score each fold's seed ensemble (the mean of its seeds' probabilities)
    only_folds: tuple[int, ...] = ()  # 1-based; empty: every fold (the rest run in other processes)


@dataclass
class CrossValReport:
    path: Path  # crossval.json
    folds: list[Fold]
    results: list[FoldResult]
    summary: dict[str, Any]


def plan(request: CrossValRequest) -> tuple[DatasetPlugin, list[Fold]]:
    """The data plugin and the folds, checked before anything trains (bad input: one line each)."""
    from lexiedge.plugin import get_host

    entry = request.profile.model(request.model_key)
    data_plugin = get_host().datasets.get(entry.data.plugin)
    if request.data is not None and not request.data.exists():
        raise UsageError(f"--data {request.data}: no such file or folder")
    data_plugin.check_source(entry.data.settings, request.data)
    groups = data_plugin.groups(entry.data.settings, request.data)
    if groups is None:
        raise UsageError(
            f"data plugin {data_plugin.name!r} declares no speaker groups, so its examples cannot be "
            "split into folds by speaker; --folds needs a data set whose plugin declares them "
            "(ravdess: the actors)"
        )
    if not request.seeds:
        raise UsageError("cross-validation needs at least one seed")
    if request.ensemble and len(request.seeds) < 2:
        raise UsageError(f"--ensemble combines each fold's seeds; pass 2 or more seeds (got {len(request.seeds)})")
    groups = [group for group in groups if group not in set(request.exclude_groups)]
    folds = make_folds(groups, request.folds, request.val_groups)
    outside = [index for index in request.only_folds if not 1 <= index <= len(folds)]
    if outside:
        raise UsageError(f"--fold {outside[0]}: this cross-validation has {len(folds)} folds, numbered 1 to {len(folds)}")
    return data_plugin, folds


def cross_validate(
    request: CrossValRequest,
    console: Console,
    *,
    train: TrainFold = train_fold,
    score: Scorer = test_scores,
    on_result: Callable[[FoldResult], None] | None = None,
) -> CrossValReport:
    """Train and score every fold with every seed, one after the other; resume what a kill interrupted.

    ``train`` and ``score`` default to `lexiedge train` and the trainer's test scores (``request.enroll``:
    the test fold scored again with enrollment, :func:`enrolled_scores`; a recipe trained before is only
    scored); ``on_result`` sees each fold's result as it comes (finished ones from a previous process too),
    e.g. to prune a search.
    """
    data_plugin, folds = plan(request)
    if request.enroll is not None:  # a bad --enroll, too few clips to enroll: one line before anything trains
        from lexiedge.profile import deep_merge

        settings = request.profile.model(request.model_key).data.settings
        enrolled = deep_merge(settings.model_dump(), data_plugin.enrollment_overrides(request.enroll))
        data_plugin.check_source(data_plugin.Settings.model_validate(enrolled), request.data)
        if score is test_scores:
            score = enrolled_scores(request.enroll, request.data, console)
    out = request.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory")
    chosen = [fold for fold in folds if not request.only_folds or fold.index + 1 in request.only_folds]
    for fold in chosen:  # every fold's recipe (teachers resolved to the fold's) is valid before one trains
        fold_profile(request.profile, request.model_key, data_plugin, fold, request.seeds[0])
    _check_plan(out, request, folds)
    results: list[FoldResult] = []
    for seed in request.seeds:  # seed-major: the first seed's k-fold mean is complete first
        for fold in chosen:
            result = _load_result(out, fold, seed, request.enroll)
            name = f"{fold.name} (test {_describe(fold.test)}), seed {seed}"
            if result is None:
                run_dir = out / result_name(fold, seed)
                if (
                    _load_result(out, fold, seed) is None
                ):  # not trained yet (--enroll: a trained fold is only scored)
                    profile = fold_profile(request.profile, request.model_key, data_plugin, fold, seed)
                    resume = _prepare_run_dir(run_dir)
                    console.print(
                        f"[bold]crossval[/] {name}: train on {_describe(fold.train)}"
                        + (f", validate on {_describe(fold.val)}" if fold.val else "")
                        + (" (resumed)" if resume else ""),
                        highlight=False,
                    )
                    train(profile, request.model_key, request.data, run_dir, resume, console)
                    scores = (score if request.enroll is None else test_scores)(run_dir, fold, seed)
                    _save_result(out, fold, seed, None, _result(fold, seed, run_dir, scores))
                if request.enroll is not None:
                    console.print(
                        f"[bold]crossval[/] {name}: scored with enrollment ({request.enroll})",
                        highlight=False,
                    )
                    enrolled = _result(fold, seed, run_dir, score(run_dir, fold, seed))
                    _save_result(out, fold, seed, request.enroll, enrolled)
                result = _load_result(out, fold, seed, request.enroll)
                assert result is not None
            else:
                console.print(f"[bold]crossval[/] {name}: done before, kept", highlight=False)
            console.print(
                f"  {name}: " + ", ".join(f"{key} {result.metrics[key]:.3f}" for key in METRICS),
                highlight=False,
            )
            results.append(result)
            if on_result is not None:
                on_result(result)
    summary = summarise(results, chosen, request)
    share = chosen if len(chosen) < len(folds) else None  # this process's folds, when others run the rest
    if share:
        summary["protocol"].update(folds=len(folds), only_folds=[fold.index + 1 for fold in share])
    if request.ensemble:
        summary["ensemble"] = _ensemble_summary(
            [_ensemble_result(out, fold, request, console) for fold in chosen], request
        )
    path = atomic.write_json(out / report_name(request.enroll, share), summary)
    return CrossValReport(path, folds, results, summary)


def report_name(enroll: str | None, only: Sequence[Fold] | None = None) -> str:
    """crossval.json (every fold), crossval-folds-1-2.json (a process's share), ...-enroll-E.json."""
    stem = REPORT_JSON.removesuffix(".json") + (f"-folds-{'-'.join(str(fold.index + 1) for fold in only)}" if only else "")
    return f"{stem}.json" if enroll is None else f"{stem}-enroll-{enroll}.json"


def _ensemble_result(out: Path, fold: Fold, request: CrossValRequest, console: Console) -> dict[str, Any]:
    """The test scores of the mean of the fold's seed models' probabilities (kept in ``results/``)."""

    from lexiedge.api import EnsembleMember, EvalRequest
    from lexiedge.evaluate import evaluator_for, resolve_target

    name = f"{fold.name}-ensemble-seeds-{'-'.join(str(seed) for seed in request.seeds)}" + (
        f"-enroll-{request.enroll}" if request.enroll else ""
    )
    path = out / RESULTS_DIR / f"{name}.json"
    label = f"{fold.name} (test {_describe(fold.test)}), ensemble of seeds {', '.join(map(str, request.seeds))}"
    if path.is_file():
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
            console.print(f"[bold]crossval[/] {label}: done before, kept", highlight=False)
            return result
        except (OSError, ValueError):
            pass  # unreadable: scored again
    runs = [out / result_name(fold, seed) for seed in request.seeds]
    task = resolve_target(runs[0]).task
    where = out / "ensembles" / name
    where.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]crossval[/] {label}: scoring", highlight=False)
    rows = evaluator_for(task).evaluate_ensemble(
        EvalRequest(runs[0], request.data, "test", where, console, enroll=request.enroll),
        [EnsembleMember(run, "run") for run in runs],
    )
    ensemble = rows[-1]
    result = {
        "fold": fold.index + 1,
        "seeds": list(request.seeds),
        "test_groups": list(fold.test),
        "metrics": {key: float(ensemble.metrics[key]) for key in METRICS},
        "samples": int(ensemble.details.get("samples", 0)),
        "confusion": ensemble.details.get("confusion") or [],
        "members": [{key: float(row.metrics[key]) for key in METRICS} for row in rows[:-1]],
    }
    atomic.write_json(path, result, fsync=True)
    console.print(f"  {label}: " + ", ".join(f"{key} {result['metrics'][key]:.3f}" for key in METRICS),
                  highlight=False)
    return result


def _ensemble_summary(per_fold: list[dict[str, Any]], request: CrossValRequest) -> dict[str, Any]:
    """mean ± sd over folds of the seed ensembles, and their pooled score."""
    return {
        "seeds": list(request.seeds),
        "combine": "mean of the seed models' class probabilities",
        "mean_sd": {key: mean_sd([row["metrics"][key] for row in per_fold]) for key in METRICS},
        "pooled": pooled_scores([row["confusion"] for row in per_fold]),
        "folds": per_fold,
    }


def _prepare_run_dir(run_dir: Path) -> bool:
    """Whether the fold's run resumes: it does when it has a checkpoint; a run killed before its first one is
    removed (nothing in it is worth keeping) and starts again."""
    import shutil

    from lexiedge.rundir import checkpoints_dir, is_run_dir, run_lock
    from lexiedge.train.checkpoint import list_checkpoints

    if not run_dir.is_dir():
        return False
    with run_lock(run_dir):  # another process training this fold (--fold given to both): one line, nothing removed
        pass
    if is_run_dir(run_dir) and list_checkpoints(checkpoints_dir(run_dir)):
        return True
    shutil.rmtree(run_dir)
    return False


def _result(fold: Fold, seed: int, run_dir: Path, scores: dict[str, Any]) -> FoldResult:
    known = {*METRICS, "samples", "confusion", "checkpoint", "step", "split", "loss"}
    return FoldResult(
        fold=fold.index + 1,
        seed=seed,
        test_groups=list(fold.test),
        val_groups=list(fold.val),
        train_groups=list(fold.train),
        metrics={key: float(scores[key]) for key in METRICS},
        samples=int(scores.get("samples", 0)),
        confusion=scores.get("confusion") or [],
        checkpoint=str(scores.get("checkpoint", "final")),
        step=int(scores.get("step", 0)),
        run_dir=str(run_dir),
        extra={key: value for key, value in scores.items() if key not in known},
    )


def _plan_record(request: CrossValRequest, folds: list[Fold]) -> dict[str, Any]:
    return {
        "model_key": request.model_key,
        "recipe": request.profile.raw["models"][request.model_key],
        "device": request.profile.raw.get("device"),
        "data": str(request.data.resolve()) if request.data is not None else None,
        "folds": [{"train": list(f.train), "val": list(f.val), "test": list(f.test)} for f in folds],
        "val_groups": request.val_groups,
    }


def _check_plan(out: Path, request: CrossValRequest, folds: list[Fold]) -> None:
    """Record the recipe in a new folder; in an existing one, refuse another recipe (seeds may be added)."""

    record = _plan_record(request, folds)
    path = out / PLAN_JSON
    if path.is_file():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UsageError(f"{path} is not readable JSON; pass a new --out") from None
        record = json.loads(json.dumps(record))  # tuples -> lists, as recorded
        differing = sorted(key for key in record if recorded.get(key) != record[key])
        if differing:
            raise UsageError(
                f"--out {out} holds a cross-validation of another recipe ({', '.join(differing)} "
                "differ); pass a new --out, or the same profile, settings, data and --folds to resume it"
            )
        return
    if out.is_dir() and any(out.iterdir()):
        if path.is_file():  # another process of the same cross-validation (--fold) recorded it meanwhile
            return _check_plan(out, request, folds)
        raise UsageError(
            f"--out {out} exists and is not a cross-validation folder; pass a new or empty folder"
        )
    atomic.write_json(path, record, fsync=True)


def _save_result(out: Path, fold: Fold, seed: int, enroll: str | None, result: FoldResult) -> None:
    atomic.write_json(
        out / RESULTS_DIR / f"{result_name(fold, seed, enroll)}.json", asdict(result), fsync=True
    )


def _load_result(out: Path, fold: Fold, seed: int, enroll: str | None = None) -> FoldResult | None:

    path = out / RESULTS_DIR / f"{result_name(fold, seed, enroll)}.json"
    if not path.is_file():
        return None
    try:
        return FoldResult(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # unreadable: scored again (the run itself is finished, so only the scoring repeats)


# --- the report ------------------------------------------------------------------------------------------


def mean_sd(values: Sequence[float]) -> dict[str, float | int]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n if n else float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": n}


def pooled_scores(confusions: Sequence[list[list[int]]]) -> dict[str, float] | None:
    """The metrics of the summed confusion matrices (every clip scored once, by the model that never heard
    its speaker); None when there are none, or one is missing."""
    if not confusions or not all(confusions):
        return None
    import numpy as np

    from lexiedge.metrics import classification_metrics

    scores = classification_metrics(np.sum([np.asarray(matrix) for matrix in confusions], axis=0))
    return {key: float(scores[key]) for key in METRICS}


def summarise(results: list[FoldResult], folds: list[Fold], request: CrossValRequest) -> dict[str, Any]:
    """mean ± sd over fold x seed runs, per seed (mean over folds and pooled), and the per-fold table."""

    per_seed = {}
    for seed in request.seeds:
        rows = [r for r in results if r.seed == seed]
        pooled = pooled_scores([r.confusion for r in rows])
        per_seed[str(seed)] = {
            "folds": len(rows),
            **{key: sum(r.metrics[key] for r in rows) / len(rows) for key in METRICS},
            "pooled": pooled,
        }
    return {
        "protocol": {
            "folds": len(folds),
            "groups_per_fold": [len(f.test) for f in folds],
            "val_groups": request.val_groups,
            "checkpoint": "best on the inner validation groups"
            if request.val_groups
            else "final weights after the recipe's fixed epochs (the test fold never evaluated in training)",
            "seeds": list(request.seeds),
            "enroll": request.enroll,
            "scored": "the test speakers' clips that are not enrollment clips (those give each speaker's "
            "profile)"
            if request.enroll
            else "every clip of the test speakers (those the data scores)",
        },
        "model_key": request.model_key,
        "profile": request.profile.name,
        "data": str(request.data) if request.data is not None else None,
        "mean_sd": {key: mean_sd([r.metrics[key] for r in results]) for key in METRICS},
        "per_seed": per_seed,
        "runs": [asdict(r) for r in results],
    }


def print_report(report: CrossValReport, console: Console) -> None:
    """The per-fold table, then mean ± sd over folds x seeds and each seed's mean."""
    from rich.table import Table

    table = Table(title=None)
    for column in ("fold", "seed", "test speakers", "clips", *METRICS):
        table.add_column(column, justify="left" if column in ("test speakers",) else "right")
    for r in report.results:
        table.add_row(
            str(r.fold),
            str(r.seed),
            _describe(r.test_groups),
            str(r.samples),
            *(f"{r.metrics[key]:.3f}" for key in METRICS),
        )
    stats = report.summary["mean_sd"]
    table.add_row(
        "mean ± sd",
        "",
        f"{len(report.results)} runs",
        "",
        *(f"{stats[key]['mean']:.3f} ± {stats[key]['sd']:.3f}" for key in METRICS),
    )
    console.print(table)
    ensemble = report.summary.get("ensemble")
    if ensemble:
        stats = ensemble["mean_sd"]
        console.print(
            f"ensemble of seeds {', '.join(map(str, ensemble['seeds']))} (mean of probabilities), per fold "
            + ", ".join(f"{row['metrics']['uar']:.3f}" for row in ensemble["folds"])
            + ": "
            + ", ".join(f"{key} {stats[key]['mean']:.3f} ± {stats[key]['sd']:.3f}" for key in METRICS),
            highlight=False,
        )
    for seed, row in report.summary["per_seed"].items():
        pooled = row["pooled"]
        console.print(
            f"seed {seed}: mean over {row['folds']} folds "
            + ", ".join(f"{k} {row[k]:.3f}" for k in METRICS)
            + (f"; pooled uar {pooled['uar']:.3f}" if pooled else ""),
            highlight=False,
        )
