"""The search: an Optuna study whose trials are `lexiedge train` runs of one profile with other settings.

Each trial asks the sampler (TPE, seeded) for a value of every parameter of the space, loads the search's
profile with them as ``--set`` lines (validated as `lexiedge train` validates), and trains it through the
training pipeline into ``trials/NNNN/``, where every evaluation reports the task's metric (the trainer's
``best_metric``: ``val/uar`` for the classifier, ``val/loss`` for the LM) to Optuna; the median pruner stops a
trial that is worse than the median of earlier trials at the same epoch. A trial's value is its best
evaluation, the one its ``checkpoints/best/`` holds. The test split is never evaluated.

The study lives in SQLite in the tune folder. A search killed (kill -9, a power cut) leaves its running trial
marked running: ``--resume`` marks it failed (``interrupted``), queues its parameters again, and goes on until
the requested number of trials finished; finished trials are kept and never trained again.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

import lexiedge
from lexiedge import atomic
from lexiedge.api import StopTraining
from lexiedge.errors import LexiedgeError, ProfileError, UsageError
from lexiedge.plugin import get_host
from lexiedge.profile import Profile, load_profile
from lexiedge.tune import folder as layout
from lexiedge.tune.space import SearchSpace, SpaceError, check_against_profile, read_space_file

if TYPE_CHECKING:
    import optuna

STUDY_NAME = "lexiedge-tune"
# PED-ANOVA computes importances from two trials, but they say nothing then (one differing pair of values)
MIN_TRIALS_FOR_IMPORTANCE = 5
# Optuna's steps are integers: a trial reports at epoch * 1000 (so evaluations mid-epoch too)
STEPS_PER_EPOCH = 1000
# a trial's user attributes in the study
ORIGIN, RERUN_OF, ERROR = "origin", "rerun_of", "error"


@dataclass
class TuneRequest:
    """What `lexiedge tune` was asked; ``None`` on a resume means: what the search recorded."""

    profile: str  # --profile: a name from profiles/ or a path
    model_key: str | None
    data: Path | None
    trials: int | None
    space_file: Path | None = None
    sets: list[str] = field(default_factory=list)
    out: Path | None = None
    resume: bool = False
    seed: int | None = None
    prune: bool | None = None
    prune_startup: int | None = None
    prune_warmup: float | None = None
    baseline: bool | None = None
    folds: int | None = None  # score each trial by the k-fold mean over speakers (lexiedge.crossval)


DEFAULTS = {"seed": 0, "prune": True, "prune_startup": 5, "prune_warmup": 1.0, "baseline": True}


@dataclass
class Setup:
    """Everything a search needs, decided before the first trial (and recorded for --resume)."""

    folder: Path
    profile: Profile  # the --profile with --set, as loaded now (its model entry: the plugins)
    model_key: str
    space: SearchSpace
    metric: str
    direction: str  # "maximize" or "minimize"
    record: dict[str, Any]  # tune.json: {"request": {...}, "trials": [...], "best": {...}}
    notes: list[str] = field(default_factory=list)

    @property
    def request(self) -> dict[str, Any]:
        return self.record["request"]

    @property
    def data(self) -> Path | None:
        data = self.request.get("data")
        return Path(data) if data else None

    @property
    def folds(self) -> int | None:
        return self.request.get("folds")

    @property
    def objective(self) -> str:
        """What a trial's value is, as the reports name it: ``val/uar``, or ``uar (5-fold mean)``."""
        return f"{fold_metric(self.metric)} ({self.folds}-fold mean)" if self.folds else self.metric


# --- deciding what to search ---------------------------------------------------------------------


def resolve(request: TuneRequest) -> Setup:
    """Check the request and work out the search (a new one, or the recorded one on --resume); no training."""
    host = get_host()
    profile = load_profile(request.profile, request.sets, host=host)
    model_key = _model_key(profile, request.model_key)
    if request.resume:
        return _resolve_resume(request, profile, model_key)
    if request.trials is None:
        raise UsageError("--trials N is required: how many trials the search trains")
    if request.trials < 1:
        raise UsageError(f"--trials must be at least 1 (the number of trials to train), got {request.trials}")
    entry = profile.model(model_key)
    metric, direction = task_metric(entry.train.plugin)
    space, notes = search_space(request, profile, model_key)
    if request.data is not None and not request.data.exists():
        raise UsageError(f"--data {request.data} does not exist")
    host.datasets.get(entry.data.plugin).check_source(entry.data.settings, request.data)
    options = {
        key: getattr(request, key) if getattr(request, key) is not None else value
        for key, value in DEFAULTS.items()
    }
    if options["prune_startup"] < 0 or options["prune_warmup"] < 0:
        raise UsageError("--prune-startup and --prune-warmup count trials and epochs: 0 or more")
    folds = (
        plan_folds(request.folds, profile, model_key, request.data, metric)
        if request.folds is not None
        else {}
    )
    folder = request.out or layout.new_folder(profile.name, model_key)
    if folder.exists() and (not folder.is_dir() or any(p.name != "run.lock" for p in folder.iterdir())):
        raise UsageError(
            f"{folder} exists and is not empty; use --resume to continue that search or another --out"
        )
    record = {
        "request": {
            "profile": request.profile,
            "profile_source": str(Path(profile.source).resolve()),
            "profile_name": profile.name,
            "model": model_key,
            "data": str(request.data.resolve()) if request.data else None,
            "sets": list(request.sets),
            "space_source": space.source,
            "space": space.as_yaml(),
            "metric": metric,
            "direction": direction,
            "split": "inner folds" if folds else "val",
            "folds": request.folds,
            **folds,
            "trials": request.trials,
            **options,
            "lexiedge_version": lexiedge.__version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
        "trials": [],
        "best": None,
    }
    setup = Setup(folder, profile, model_key, space, metric, direction, record, notes)
    record["request"]["objective"] = setup.objective
    return setup


def search_space(request: TuneRequest, profile: Profile, model_key: str) -> tuple[SearchSpace, list[str]]:
    """The --space file's space, else the model plugin's, checked against the profile."""
    host = get_host()
    entry = profile.model(model_key)
    try:
        if request.space_file is not None:
            space = read_space_file(request.space_file, model_key)
        else:
            params = host.models.get(entry.model.plugin).search_space(entry)
            space = SearchSpace(tuple(params), source=f"the {entry.model.plugin} model's default space")
        return check_against_profile(
            space, request.profile, request.sets, model_key, host, declared=request.space_file is None
        )
    except SpaceError as exc:
        where = "" if request.space_file is not None else f"{entry.model.plugin}'s default space: "
        raise UsageError(f"{where}{exc}") from None


def task_metric(trainer_name: str) -> tuple[str, str]:
    """The metric the trainer chooses its best checkpoint by (``val/uar``, max) as an Optuna direction."""
    trainer = get_host().trainers.get_class(trainer_name)
    declared = getattr(trainer, "best_metric", None)
    if not (isinstance(declared, tuple) and len(declared) == 2 and declared[1] in ("max", "min")):
        raise UsageError(
            f"trainer {trainer_name!r} declares no best_metric (e.g. ('val/uar', 'max')); a search "
            "needs the metric to optimise"
        )
    name, mode = declared
    if not name.startswith("val/"):
        raise UsageError(
            f"trainer {trainer_name!r} chooses its best checkpoint by {name}; a search scores trials "
            "on the validation split only (val/...)"
        )
    return name, "maximize" if mode == "max" else "minimize"


def fold_metric(metric: str) -> str:
    """The cross-validation score of a trainer's metric: ``val/uar`` -> ``uar``."""
    return metric.split("/", 1)[-1]


def plan_folds(k: int, profile: Profile, model_key: str, data: Path | None, metric: str) -> dict[str, Any]:
    """The speakers --folds cuts into folds: the data's groups without those the profile keeps for testing."""
    from lexiedge.crossval import METRICS, make_folds

    if fold_metric(metric) not in METRICS:
        raise UsageError(
            f"--folds scores {', '.join(METRICS)} on each fold's held-out speakers; this trainer's "
            f"metric is {metric}: tune it on the validation split (without --folds)"
        )
    entry = profile.model(model_key)
    plugin = get_host().datasets.get(entry.data.plugin)
    if data is not None and not data.exists():
        raise UsageError(f"--data {data} does not exist")
    plugin.check_source(entry.data.settings, data)
    groups = plugin.groups(entry.data.settings, data)
    if groups is None:
        raise UsageError(
            f"--folds: data plugin {plugin.name!r} declares no speaker groups to make folds of; "
            "tune on the validation split (without --folds)"
        )
    held = list(plugin.held_out_groups(entry.data.settings, data))
    usable = [group for group in groups if group not in set(held)]
    if k > len(usable):
        kept = f" (the test split's {', '.join(map(str, held))} never take part)" if held else ""
        raise UsageError(
            f"--folds {k} is more than the {len(usable)} speakers a search may use: "
            f"{', '.join(map(str, usable)) or 'none'}{kept}; use at most --folds {len(usable)}"
        )
    make_folds(usable, k)  # --folds 1 and the like: one line from the protocol's home
    return {"fold_groups": usable, "held_out_groups": held}


def _model_key(profile: Profile, wanted: str | None) -> str:
    if wanted is not None:
        profile.model(wanted)  # an unknown one lists the profile's
        return wanted
    if len(profile.models) == 1:
        return next(iter(profile.models))
    raise UsageError(
        f"profile {profile.name} has several models ({', '.join(profile.models)}); "
        "pick the one to tune with --model"
    )


def _resolve_resume(request: TuneRequest, profile: Profile, model_key: str) -> Setup:
    folder = request.out or layout.newest_folder(profile.name, model_key)
    record = layout.read_record(folder)
    recorded = record["request"]
    if recorded.get("model") != model_key:
        raise UsageError(f"{folder} searched {recorded.get('model')!r}, not {model_key!r}")
    if request.sets and list(request.sets) != recorded.get("sets"):
        raise UsageError(
            f"{folder}: --resume continues with the recorded --set options "
            f"({' '.join(recorded.get('sets') or []) or 'none'}); drop --set or start a new search"
        )
    if request.data is not None and str(request.data.resolve()) != recorded.get("data"):
        raise UsageError(
            f"{folder}: --resume continues on the recorded data ({recorded.get('data')}); drop --data "
            "or start a new search"
        )
    try:
        space = SearchSpace(
            tuple(_params_from_record(recorded["space"], model_key)),
            tuple(recorded["space"].get("try_first") or ()),
            source=recorded.get("space_source", ""),
        )
    except (SpaceError, KeyError, TypeError) as exc:
        raise UsageError(f"{folder}/{layout.TUNE_JSON}: the recorded space cannot be read: {exc}") from None
    if request.space_file is not None:
        wanted = read_space_file(request.space_file, model_key).as_yaml()
        if wanted != space.as_yaml():
            raise UsageError(
                f"{folder}: --resume continues the recorded search space; drop --space or start a new "
                "search to search another one"
            )
    for key in DEFAULTS:
        given = getattr(request, key)
        if given is not None and given != recorded.get(key):
            option = "--" + key.replace("_", "-")
            raise UsageError(
                f"{folder}: --resume continues with the recorded {option} ({recorded.get(key)}); "
                "drop it or start a new search"
            )
    if request.folds is not None and request.folds != recorded.get("folds"):
        raise UsageError(
            f"{folder}: --resume continues with the recorded --folds ({recorded.get('folds')}); drop it "
            "or start a new search"
        )
    if request.trials is not None:
        if request.trials < 1:
            raise UsageError(
                f"--trials must be at least 1 (the number of trials to train), got {request.trials}"
            )
        recorded["trials"] = request.trials
    profile = load_profile(folder / layout.PROFILE_YAML, host=get_host())
    return Setup(folder, profile, model_key, space, recorded["metric"], recorded["direction"], record)


def _params_from_record(document: dict[str, Any], model_key: str) -> list:
    from lexiedge.tune.space import param_from_yaml

    return [param_from_yaml(name, entry, model_key) for name, entry in document["space"].items()]


# --- reading the study ---------------------------------------------------------------------------

STATES = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
    "WAITING": "waiting",
}


def summarize(
    study: optuna.Study, folder: Path, folds: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every trial (number, state, parameters, value, epochs or folds reached, its folder); the best one."""
    minimize = study.direction.name == "MINIMIZE"
    rerun = interrupted(study)
    trials = []
    for trial in study.get_trials(deepcopy=False):
        state = STATES.get(trial.state.name, trial.state.name.lower())
        if state == "waiting":
            continue
        if state == "failed" and trial.number in rerun:
            state = "interrupted"
        reported = [
            v for v in trial.intermediate_values.values() if isinstance(v, float) and math.isfinite(v)
        ]
        value = (
            trial.value
            if state == "complete"
            else (min(reported) if minimize else max(reported))
            if reported
            else None
        )
        steps = sorted(trial.intermediate_values)
        run_dir = layout.trial_dir(folder, trial.number)
        trials.append(
            {
                "number": trial.number,
                "state": state,
                "params": dict(trial.params),
                "value": value,
                "folds_done" if folds else "epochs": steps[-1] / STEPS_PER_EPOCH if steps else None,
                "origin": trial.user_attrs.get(ORIGIN, "sampler"),
                **({"rerun_of": trial.user_attrs[RERUN_OF]} if RERUN_OF in trial.user_attrs else {}),
                **({"error": trial.user_attrs[ERROR]} if ERROR in trial.user_attrs else {}),
                "run_dir": str(run_dir) if run_dir.is_dir() else None,
            }
        )
    complete = [t for t in trials if t["state"] == "complete" and t["value"] is not None]
    best = None
    if complete:
        best = (min if minimize else max)(complete, key=lambda t: t["value"])
        best = {
            "number": best["number"],
            "value": best["value"],
            "params": best["params"],
            "run_dir": best["run_dir"],
        }
    return trials, best


def importances(study: optuna.Study) -> dict[str, float] | None:
    """Each parameter's share of the variation of the metric (Optuna's PED-ANOVA: no scikit-learn needed),
    once :data:`MIN_TRIALS_FOR_IMPORTANCE` trials completed; ``None`` before, or when Optuna cannot tell."""
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < MIN_TRIALS_FOR_IMPORTANCE:
        return None
    try:
        with warnings.catch_warnings():  # PED-ANOVA is marked experimental
            warnings.simplefilter("ignore")
            found = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    except (ValueError, RuntimeError, ZeroDivisionError):
        return None
    return {name: float(value) for name, value in found.items()} or None


# --- running it ----------------------------------------------------------------------------------


@dataclass
class TuneResult:
    folder: Path
    record: dict[str, Any]  # tune.json as written last
    plot: Path | None


class Search:
    """One search on its study; :meth:`run` trains trials until the requested number finished."""

    def __init__(self, setup: Setup, console: Console) -> None:
        self.setup, self.console = setup, console
        self.request = setup.request
        self.host = get_host()

    def run(self) -> TuneResult:
        import optuna

        if not _verbose():
            optuna.logging.set_verbosity(optuna.logging.ERROR)
        setup, request = self.setup, self.request
        with layout.folder_lock(setup.folder):
            study = self._open_study(optuna)
            counted = self._finished(study)
            self._header(counted)
            plot = None
            while counted < request["trials"]:
                self._run_trial(study, counted)
                counted = self._finished(study)
                plot = self._write_reports(study)
            if plot is None:
                plot = self._write_reports(study)
        return TuneResult(setup.folder, self.setup.record, plot)

    # --- the study -------------------------------------------------------------------------------

    def _open_study(self, optuna) -> optuna.Study:
        setup, request = self.setup, self.request
        folder = setup.folder
        fresh = not (folder / layout.STUDY_DB).exists()
        if fresh:
            folder.mkdir(parents=True, exist_ok=True)
            profile = _single_model(setup.profile, setup.model_key)
            atomic.write_text(
                folder / layout.PROFILE_YAML,
                f"# resolved from {setup.profile.source}\n{profile.to_yaml()}",
                fsync=True,
            )
            layout.write_record(folder, setup.record)
        storage = optuna.storages.RDBStorage(
            layout.storage_url(folder), engine_kwargs={"connect_args": {"timeout": 60}}
        )
        existing = 0 if fresh else len(optuna.load_study(study_name=STUDY_NAME, storage=storage).trials)
        sampler = optuna.samplers.TPESampler(seed=request["seed"] + existing)  # a resume draws new points
        pruner = (
            optuna.pruners.MedianPruner(
                n_startup_trials=request["prune_startup"],
                n_warmup_steps=round(request["prune_warmup"] * STEPS_PER_EPOCH),
            )
            if request["prune"]
            else optuna.pruners.NopPruner()
        )
        study = optuna.create_study(
            study_name=STUDY_NAME,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction=setup.direction,
            load_if_exists=not fresh,
        )
        if fresh:
            self._enqueue_first(study)
        else:
            self._requeue_interrupted(study)
        return study

    def _enqueue_first(self, study: optuna.Study) -> None:
        """The profile's own settings first (when they lie in the space), then the try_first points."""
        space = self.setup.space
        if self.request["baseline"]:
            values, outside = baseline_values(space, self.setup.profile, self.setup.model_key)
            if values:
                study.enqueue_trial(values, user_attrs={ORIGIN: "baseline"})
            note = f" ({', '.join(outside)} outside the space: sampled)" if outside else ""
            self.setup.notes.append(f"trial 0 trains the profile's own settings{note}")
        for point in space.try_first:
            study.enqueue_trial(dict(point), user_attrs={ORIGIN: "try_first"})

    def _requeue_interrupted(self, study: optuna.Study) -> None:
        """A trial left running (its process was killed) is queued again, then marked failed (an interrupted
        trial is one that a later trial is the rerun of; see :func:`interrupted`)."""
        from optuna.trial import TrialState

        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            _requeue(study, trial.number, dict(trial.params))
            self.setup.notes.append(f"trial {trial.number} was interrupted (its process ended): queued again")

    @staticmethod
    def _finished(study: optuna.Study) -> int:
        """Trials that count toward --trials: complete, pruned, or failed by themselves (not interrupted)."""
        from optuna.trial import TrialState

        done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        rerun = interrupted(study)
        return sum(1 for t in study.get_trials(deepcopy=False, states=done) if t.number not in rerun)

    # --- one trial -------------------------------------------------------------------------------

    def _run_trial(self, study: optuna.Study, counted: int) -> None:
        from optuna.trial import TrialState

        setup = self.setup
        trial = study.ask()
        params = {param.name: param.suggest(trial) for param in setup.space.params}
        run_dir = layout.trial_dir(setup.folder, trial.number)
        log = layout.trial_log(setup.folder, trial.number)
        reporter = Reporter(trial, setup.metric, setup.direction, self._fold_metric())
        outcome: dict[str, Any] = {}
        try:
            with self._status(f"trial {trial.number}: training (log: {log})"):
                self._train(trial, params, run_dir, log, reporter)
        except StopTraining:
            study.tell(trial, state=TrialState.PRUNED)
            outcome = {"state": "pruned"}
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)) or not isinstance(exc, Exception):
                self._interrupted(study, trial)
                raise
            message = _one_line(exc)
            trial.set_user_attr(ERROR, message)
            study.tell(trial, state=TrialState.FAIL)
            outcome = {"state": "failed", "error": message}
            if isinstance(exc, NoMetricError):
                self._write_reports(study)
                raise
        else:
            study.tell(trial, reporter.best)
            outcome = {"state": "complete"}
        finally:
            _release_memory()  # the trial's model and optimizer state, before the next one is built
        self.console.print(
            trial_line(setup, study, trial.number, params, reporter, outcome, counted + 1),
            highlight=False,
            soft_wrap=True,
        )

    def _train(self, trial, params: dict[str, Any], run_dir: Path, log: Path, reporter: Reporter) -> None:
        from lexiedge import training_runs
        from lexiedge.console import make_console

        setup = self.setup
        lines = setup.space.overrides(setup.model_key, params)
        try:
            profile = load_profile(setup.folder / layout.PROFILE_YAML, lines, host=self.host)
        except ProfileError as exc:  # a combination the plugins refuse (the ends of each range were checked)
            raise LexiedgeError(f"settings refused: {exc.key}: {exc.problem}") from None
        request = training_runs.TrainRequest(
            profile=profile,
            model_keys=[setup.model_key],
            data={setup.model_key: setup.data},
            out=run_dir,
            resume=False,
            on_evaluate=reporter,
            evaluate_test=False,
        )
        if setup.folds:  # trials/NNNN/ is a cross-validation folder: fold-F-seed-S/ runs, crossval.json
            from lexiedge.crossval import CrossValRequest, cross_validate

            seed = profile.model(setup.model_key).train.settings.seed
            request = CrossValRequest(
                profile,
                setup.model_key,
                setup.data,
                setup.folds,
                run_dir,
                seeds=(seed,),
                exclude_groups=tuple(setup.request["held_out_groups"]),
            )
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", encoding="utf-8") as handle:
            trial_console = make_console(file=handle)
            trial_console.print(
                ("cross-validation (lexiedge.crossval) of: " if setup.folds else "")
                + "lexiedge train "
                + " ".join(
                    [
                        f"--profile {setup.folder / layout.PROFILE_YAML}",
                        f"--model {setup.model_key}",
                        *([f"--data {setup.data}"] if setup.data else []),
                        *(f"--set {line}" for line in lines),
                    ]
                ),
                markup=False,
                highlight=False,
            )
            try:
                if setup.folds:
                    cross_validate(request, trial_console, on_result=reporter.fold_done)
                else:
                    training_runs.train(request, trial_console)
            except StopTraining as exc:
                trial_console.print(str(exc), markup=False, highlight=False)
                raise
            except LexiedgeError as exc:
                trial_console.print(f"error: {exc}", markup=False, highlight=False)
                raise
            except Exception:
                trial_console.print_exception()  # the trial fails, the search goes on: its log keeps this
                raise
        if reporter.best is None:
            raise NoMetricError(
                f"trial {trial.number} trained but no evaluation reported {setup.metric}: the data has no "
                "validation split, and a search scores trials on it (never on the test split)"
            )

    def _fold_metric(self) -> str | None:
        return fold_metric(self.setup.metric) if self.setup.folds else None

    def _interrupted(self, study: optuna.Study, trial) -> None:
        """Ctrl-C (or a signal that ends the process cleanly): the trial is queued again for --resume."""
        with contextlib.suppress(Exception):
            _requeue(study, trial.number, dict(trial.params))
            self._write_reports(study)

    def _status(self, text: str):
        if self.console.is_terminal and not self.console.quiet:
            return self.console.status(escape(text))
        return contextlib.nullcontext()

    # --- reports -----------------------------------------------------------------------------------

    def _header(self, counted: int) -> None:
        setup, request = self.setup, self.request
        verb = "maximising" if setup.direction == "maximize" else "minimising"
        action = (
            f"resuming ({counted} of {request['trials']} trials done)"
            if counted
            else f"{request['trials']} trials"
        )
        if setup.folds:
            held = request.get("held_out_groups") or []
            scored = (
                f"the {setup.folds}-fold mean of {fold_metric(setup.metric)} over speakers "
                f"{', '.join(map(str, request['fold_groups']))}"
                + (f" (never the test split's {', '.join(map(str, held))})" if held else "")
            )
        else:
            scored = f"{setup.metric} on the validation split (never the test split)"
        self.console.print(
            f"[bold]tune[/] {setup.model_key} with profile {escape(request['profile_name'])} -> "
            f"{escape(str(setup.folder))}: {action}, {verb} {escape(scored)}; space: "
            f"{escape(request['space_source'])}",
            highlight=False,
            soft_wrap=True,
        )
        for note in setup.notes:
            self.console.print(f"[dim]{escape(note)}[/]", highlight=False, soft_wrap=True)

    def _write_reports(self, study: optuna.Study) -> Path | None:
        from lexiedge.tune.report import draw_study

        setup = self.setup
        trials, best = summarize(study, setup.folder, folds=bool(setup.folds))
        found = importances(study)
        setup.record.update(trials=trials, best=best, importances=found)
        setup.record["request"]["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        layout.write_record(setup.folder, setup.record)
        return draw_study(
            trials,
            found,
            setup.objective,
            setup.direction,
            setup.folder / layout.STUDY_PNG,
            importance_after=MIN_TRIALS_FOR_IMPORTANCE,
        )


class NoMetricError(UsageError):
    """A trial trained but never reported the metric: no validation split. The search stops."""


class Reporter:
    """What a trial reports to Optuna, and where it prunes.

    On the validation split (``TrainJob.on_evaluate``): each evaluation's metric at its epoch; the trial's
    value is its best evaluation (the one ``checkpoints/best/`` keeps). With folds (``cross_validate``'s
    ``on_result``): the running mean over the folds done; the trial's value is the mean over all folds.
    """

    def __init__(self, trial, metric: str, direction: str, fold_key: str | None = None) -> None:
        self.trial, self.metric, self.direction, self.fold_key = trial, metric, direction, fold_key
        self.best: float | None = None
        self.last: float | None = None
        self.epoch: float | None = None  # epochs trained (folds: folds done) when it last reported
        self.fold_scores: list[float] = []

    def __call__(self, row: dict[str, Any]) -> None:
        value = row.get(self.metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return
        self.last, self.epoch = float(value), float(row.get("epoch", 0.0))
        if self.best is None or (value > self.best if self.direction == "maximize" else value < self.best):
            self.best = float(value)
        self._report("epoch")

    def fold_done(self, result) -> None:
        """``cross_validate``'s ``on_result``: one fold's score on its held-out speakers."""
        self.fold_scores.append(float(result.metrics[self.fold_key]))
        self.last = self.best = sum(self.fold_scores) / len(self.fold_scores)
        self.epoch = float(len(self.fold_scores))
        self._report("fold")

    def _report(self, unit: str) -> None:
        with warnings.catch_warnings():  # a step reported twice (never at our cadence) is only a warning
            warnings.simplefilter("ignore")
            self.trial.report(self.last, round(self.epoch * STEPS_PER_EPOCH))
        if self.trial.should_prune():
            what = (
                f"{self.fold_key} mean over {len(self.fold_scores)} folds" if unit == "fold" else self.metric
            )
            raise StopTraining(
                f"pruned at {unit} {self.epoch:.{0 if unit == 'fold' else 2}f}: {what} "
                f"{self.last:.4g} is worse than the median of the earlier trials at that {unit}"
            )


def interrupted(study: optuna.Study) -> set[int]:
    """The trials whose process ended while they trained: those another trial reruns."""
    return {t.user_attrs[RERUN_OF] for t in study.get_trials(deepcopy=False) if RERUN_OF in t.user_attrs}


def _requeue(study: optuna.Study, number: int, params: dict[str, Any]) -> None:
    """Queue trial ``number``'s parameters again (once), then mark it failed: the order a kill between the
    two cannot break (a trial still running on the next resume is queued no second time)."""
    from optuna.trial import TrialState

    if number not in interrupted(study):
        study.enqueue_trial(params, user_attrs={ORIGIN: "rerun", RERUN_OF: number})
    study.tell(number, state=TrialState.FAIL)


def baseline_values(space: SearchSpace, profile: Profile, model_key: str) -> tuple[dict[str, Any], list[str]]:
    """The profile's own value of each parameter (defaults filled in) inside the space; the names outside."""
    from lexiedge.train.resume import training_settings

    settings = training_settings(profile, model_key)
    values, outside = {}, []
    for param in space.params:
        found = [settings.get(f"models.{model_key}.{key}", _MISSING) for key in param.keys]
        if (
            all(value is not _MISSING for value in found)
            and len({repr(v) for v in found}) == 1
            and param.contains(found[0])
        ):
            values[param.name] = found[0]
        else:
            outside.append(param.name)
    return values, outside


_MISSING = object()


def _release_memory() -> None:
    gc.collect()
    import sys

    torch = sys.modules.get("torch")  # imported by the trial's training; nothing to free without it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _single_model(profile: Profile, model_key: str) -> Profile:
    from lexiedge.training_runs import single_model_profile

    return single_model_profile(profile, model_key)


def _verbose() -> bool:
    from lexiedge.console import is_verbose

    return is_verbose()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    return message if isinstance(exc, LexiedgeError) else f"{type(exc).__name__}: {message}"


def trial_line(
    setup: Setup,
    study,
    number: int,
    params: dict[str, Any],
    reporter: Reporter,
    outcome: dict[str, Any],
    position: int,
) -> str:
    from lexiedge.tune.report import format_params, format_value

    total = setup.request["trials"]
    state = outcome["state"]
    parts = [f"[{position}/{total}] trial {number}", format_params(params)]
    if state == "complete":
        parts.append(f"{setup.objective} {format_value(reporter.best)}")
    elif state == "pruned" and setup.folds:
        parts.append(f"{setup.objective} {format_value(reporter.last)} after {reporter.epoch:.0f} folds")
    elif state == "pruned":
        parts.append(f"{setup.metric} {format_value(reporter.last)} at epoch {reporter.epoch:.2f}")
    parts.append(state if state != "failed" else f"failed: {outcome.get('error', '')}")
    try:
        best_trial = study.best_trial
        parts.append(f"best {format_value(best_trial.value)} (trial {best_trial.number})")
    except ValueError:
        parts.append("best: none yet")
    return escape(" | ".join(parts))
