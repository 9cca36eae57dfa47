"""The `lexiedge` command line: thin wrappers over the pipeline, the planner and the plugin host.

Every user error is a :class:`~lexiedge.errors.LexiedgeError`, printed as one line on stderr with its
exit code (2 for bad input); tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from lexiedge import __version__
from lexiedge.console import console, err_console
from lexiedge.errors import LexiedgeError

if TYPE_CHECKING:
    from lexiedge.latency.run import BenchSettings

app = typer.Typer(
    name="lexiedge",
    help="Train small models on small GPUs and ship them to phones and desktops.",
    no_args_is_help=True,
    add_completion=True,  # lexiedge --install-completion [bash|zsh|fish|powershell]
    pretty_exceptions_enable=False,
)


def _flags_show_no_value_type() -> None:
    """typer 0.29 labels every option with its value's type in --help, flags too (``--help <bool>``), though a
    flag takes no value: show none for flags (pinned to typer 0.29 in pyproject.toml; tested)."""
    from typer.core import TyperOption

    labelled = TyperOption.display_type_rich
    if getattr(labelled, "_lexiedge", False):
        return

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else labelled(self, ctx)

    display_type_rich._lexiedge = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_value_type()
profiles_app = typer.Typer(help="List and show hardware profiles.", invoke_without_command=True)
data_app = typer.Typer(help="Data tools from the dataset plugins (synthetic sets, statistics, conversions).", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")
app.add_typer(data_app, name="data")

def _profile_names(incomplete: str) -> list[str]:
    """Shell completion of --profile: the shipped profiles' names."""
    from lexiedge.profile import list_profiles

    return [path.stem for path in list_profiles() if path.stem.startswith(incomplete)]


ProfileOpt = Annotated[str, typer.Option("--profile", "-p", metavar="NAME|PATH", autocompletion=_profile_names,
                                         help="a name from profiles/ or a path to a YAML file")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="one model of the profile (default: all)")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="override a profile key: models.emotion-av.train.lr=3e-4 (repeatable)"),
]


JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout (for scripts); progress goes to stderr")]


def _print_json(data) -> None:
    """One JSON document on stdout, whatever --quiet says (it is the result), nothing else mixed in."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _version(value: bool) -> None:
    if value:
        console.print(f"lexiedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="print nothing on stdout (errors still show, on stderr)")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="also show third-party logs, warnings and progress bars (transformers, torch, hub)"),
    ] = False,
) -> None:
    """lexiedge: train -> merge -> quantize -> export -> verify -> benchmark -> runtime, driven by profiles.

    Options before the command apply to every command: lexiedge --quiet export --profile cpu.
    """
    from lexiedge.console import configure

    if quiet and verbose:
        from lexiedge.errors import UsageError

        raise UsageError("--quiet and --verbose contradict each other; pass one")
    configure(quiet=quiet, verbose=verbose)


# --- profiles and plugins ----------------------------------------------------------------------


@profiles_app.callback()
def profiles_list(ctx: typer.Context) -> None:
    """List the built-in profiles (`lexiedge profiles show NAME` prints one)."""
    if ctx.invoked_subcommand is not None:
        return
    from lexiedge.profile import _read_with_extends, list_profiles

    table = Table("profile", "device", "memory", "precision", "models", "file")
    for path in list_profiles():
        data = _read_with_extends(path)
        device = data.get("device", {})
        table.add_row(
            path.stem,
            str(device.get("kind", "?")),
            f"{device.get('memory_gb', '?')} GB",
            str(device.get("precision", "?")),
            ", ".join(data.get("models", {})),
            str(path),
        )
    console.print(table)


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="profile name or path")],
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a profile and print it resolved (after `extends` and `--set`)."""
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    profile = load_profile(name, set_ or [], host=get_host())
    if as_json:
        _print_json({"source": profile.source, "valid": True, "profile": profile.raw})
        return
    # soft_wrap: rich must not fold long lines, or the printed YAML would no longer parse
    console.print(f"# {profile.source}: valid", markup=False, highlight=False, soft_wrap=True)
    console.print(profile.to_yaml(), markup=False, highlight=False, soft_wrap=True)


@app.command("plugins")
def plugins_list(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of a table")] = False,
) -> None:
    """List installed plugins by kind (built-in and third-party alike)."""
    from lexiedge.plugin import PLUGIN_KINDS, get_host

    host = get_host()
    rows = []
    for kind in PLUGIN_KINDS:
        registry = host.registry(kind)
        for name in registry.names():
            cls = registry.get_class(name)
            serves = getattr(cls, "task", None) or ", ".join(sorted(getattr(cls, "tasks", ())))
            rows.append({"kind": kind, "name": name, "serves": serves,
                         "from": host.distribution_of(kind, name), "description": cls.description})
    if as_json:
        console.print_json(data={"plugins": rows, "broken": host.broken})
    else:
        table = Table("kind", "name", "serves", "from", "description")
        for row in rows:
            table.add_row(*row.values())
        console.print(table)
    for name, error in host.broken.items():
        err_console.print(f"[yellow]plugin entry point {name!r} failed to load[/]: {error}", highlight=False, soft_wrap=True)


# --- planning and training ---------------------------------------------------------------------


@app.command("plan")
def plan(profile: ProfileOpt, model: ModelOpt = None, set_: SetOpt = None, as_json: JsonOpt = False) -> None:
    """Memory plan before training: parameters, weights, gradients, optimizer, activations, data; fits or not."""
    from lexiedge.plan import plan_profile, render_plan
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    loaded = load_profile(profile, set_ or [], host=get_host())
    keys = [model] if model else list(loaded.models)
    for key in keys:
        loaded.model(key)
    plans = []
    for key in keys:
        memory_plan = plan_profile(loaded, key, progress=(err_console if as_json else console).print)
        if as_json:
            plans.append({**memory_plan.as_dict(), "device": memory_plan.device.model_dump(),
                          "effective_batch": memory_plan.effective_batch, "notes": memory_plan.notes})
        else:
            render_plan(memory_plan, console)
    if as_json:
        _print_json({"plans": plans})


@app.command("train")
def train(
    profile: ProfileOpt,
    model: ModelOpt = None,
    data: Annotated[
        list[str] | None, typer.Option("--data", "-d", metavar="[MODEL=]PATH", help="training data: PATH, or MODEL=PATH (repeatable)")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="run directory (default runs/<profile>/<model>/<time>)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the newest run (or --out) from its last checkpoint")] = False,
    allow_changes: Annotated[
        bool, typer.Option("--allow-changes", help="with --resume: continue with changed settings or data (recorded)")
    ] = False,
    set_: SetOpt = None,
) -> None:
    """Train the profile's models (or one with --model) and write run directories.

    --resume continues a run with the settings and data it recorded; more epochs
    (--set models.M.train.epochs=N) extend it; any other change needs --allow-changes.
    """
    from lexiedge import training_runs
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    loaded = load_profile(profile, set_ or [], host=get_host())
    keys = [model] if model else list(loaded.models)
    for key in keys:
        loaded.model(key)
    request = training_runs.TrainRequest(
        profile=loaded,
        model_keys=keys,
        data=training_runs.parse_data_args(data or [], keys),
        out=out,
        resume=resume,
        allow_changes=allow_changes,
    )
    if allow_changes and not resume:
        from lexiedge.errors import UsageError

        raise UsageError("--allow-changes only applies to --resume (a new run records whatever it is given)")
    for result in training_runs.train(request, console):
        console.print(f"[green]done[/] {result.run_dir}")


@app.command("tune")
def tune(
    profile: ProfileOpt,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="the model to tune (if the profile has several)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="training data, as for `lexiedge train`")
    ] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", "-n", help="trials to train in all (--resume: the new total)")
    ] = None,
    folds: Annotated[
        int | None, typer.Option("--folds", help="score each trial by its K-fold mean over the data's "
                                                    "speakers (never the test split's)")
    ] = None,
    space: Annotated[
        Path | None, typer.Option("--space", metavar="FILE", help="YAML search space (default: the model "
                                                                     "plugin's; see --show-space)")
    ] = None,
    set_: SetOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="tune folder (runs/<profile>/<model>/tune-<time>)")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the newest search (or --out) after a kill")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="the TPE sampler's seed (default 0)")] = None,
    no_prune: Annotated[
        bool, typer.Option("--no-prune", help="train every trial to the end (no median pruning)")
    ] = False,
    prune_startup: Annotated[
        int | None, typer.Option("--prune-startup", help="trials done before any is pruned (default 5)")
    ] = None,
    prune_warmup: Annotated[
        float | None, typer.Option("--prune-warmup", help="epochs (with --folds: folds) of each trial "
                                                             "never pruned (default 1)")
    ] = None,
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="do not train the profile's own settings first")
    ] = False,
    write_profile: Annotated[
        Path | None, typer.Option("--write-profile", metavar="FILE",
                                     help="write the best trial as a profile that extends --profile")
    ] = None,
    show_space: Annotated[
        bool, typer.Option("--show-space", help="print the search space as a --space file and exit")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Hyperparameter search (Optuna: TPE, median pruning) over a profile's settings; the best as a profile.

    Score: the trainer's metric on the validation split (val/uar; the LM: val/loss, minimised).

    With --folds K: the mean over K speaker-grouped folds of the data's speakers (as lexiedge eval --folds).

    The test split is never evaluated, nor its speakers folded in: a number tuned on it is not one users get.

    Study (SQLite) and trials: runs/<profile>/<model>/tune-<time>/; --resume continues a killed search.

    lexiedge tune --profile cpu --model emotion-av --data ravdess/ --trials 20 --write-profile best.yaml
    """
    from lexiedge.errors import UsageError
    from lexiedge.tune.search import Search, TuneRequest, resolve

    request = TuneRequest(
        profile=profile, model_key=model, data=data, trials=trials, space_file=space, sets=list(set_ or []),
        out=out, resume=resume, seed=seed, prune=False if no_prune else None, prune_startup=prune_startup,
        prune_warmup=prune_warmup, baseline=False if no_baseline else None, folds=folds,
    )
    if show_space:
        import yaml

        from lexiedge.plugin import get_host
        from lexiedge.profile import load_profile
        from lexiedge.tune.search import _model_key, search_space

        loaded = load_profile(profile, request.sets, host=get_host())
        found, notes = search_space(request, loaded, _model_key(loaded, model))
        for note in notes:
            err_console.print(f"[dim]{_escape(note)}[/]", highlight=False, soft_wrap=True)
        text = yaml.safe_dump(found.as_yaml(), sort_keys=False, default_flow_style=None)
        console.print(f"# {found.source}\n{text}", markup=False,
                      highlight=False, soft_wrap=True)
        return
    bad_profile_path = write_profile is not None and (write_profile.suffix not in (".yaml", ".yml")
                                                      or write_profile.is_dir())
    if bad_profile_path:
        raise UsageError(f"--write-profile {write_profile}: expected a .yaml file for the best profile")
    _check_out_dir(out)
    setup = resolve(request)
    result = Search(setup, err_console if as_json else console).run()
    written = None
    if write_profile is not None:
        from lexiedge.tune.report import write_best_profile

        written = write_best_profile(result.record, result.folder, write_profile)
    if as_json:
        from lexiedge.tune.folder import STUDY_DB

        _print_json({**result.record, "folder": str(result.folder), "study": str(result.folder / STUDY_DB),
                     "plot": str(result.plot) if result.plot else None,
                     "profile_written": str(written) if written else None})
        return
    _print_tune_summary(result, written)


def _print_tune_summary(result, written: Path | None) -> None:
    from lexiedge.tune.folder import STUDY_DB
    from lexiedge.tune.report import format_params, format_value

    request, best = result.record["request"], result.record.get("best")
    if best:
        console.print(f"best: trial {best['number']}, {request.get('objective', request['metric'])} "
                      f"{format_value(best['value'])}: {_escape(format_params(best['params']))} "
                      f"({_escape(str(best['run_dir']))})", highlight=False, soft_wrap=True)
    else:
        console.print("best: none (no trial completed)", highlight=False)
    plot = f"; plot: {_escape(str(result.plot))}" if result.plot else ""
    console.print(f"study: {_escape(str(result.folder / STUDY_DB))}{plot}", highlight=False, soft_wrap=True)
    if written is not None:
        command = f"lexiedge train --profile {written} --model {request['model']}" + (
            f" --data {request['data']}" if request.get("data") else "")
        console.print(f"wrote {_escape(str(written))}: {_escape(command)}", highlight=False, soft_wrap=True)


@app.command("merge")
def merge(
    run: Annotated[Path, typer.Argument(help="a run directory written by `lexiedge train`")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output directory (default RUN/merged)")] = None,
) -> None:
    """Merge a LoRA run's adapter into its base model: a self-contained model directory."""
    from lexiedge.export import merge_stage
    from lexiedge.rundir import merged_dir

    _check_out_dir(out)
    report = merge_stage(run, out or merged_dir(run), console)
    console.print_json(data=report)


# --- later stages ---------------------------------------------------------------------------


@app.command("export")
def export(
    target: Annotated[
        list[str] | None, typer.Option("--target", "-t", help="exporter plugin, e.g. onnx, onnx-int8 (repeatable)")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="profile whose newest runs (and export targets) to use")
    ] = None,
    run: Annotated[Path | None, typer.Option("--run", help="run directory (default: the profile's newest run)")] = None,
    model: ModelOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="artifact directory (several exports: their parent)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing artifact directory")] = False,
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="verification data, when the run's recorded data moved")
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Export a run to a verified artifact directory: artifacts/<model>/<target>/ with manifest.json.

    lexiedge export --target onnx --run runs/cpu/emotion-av/20260101-120000;
    lexiedge export --profile cpu (every target the profile lists, newest run of each model).
    """
    from lexiedge.export import ExportRequest, human_size, verification_summary
    from lexiedge.export import export as run_export

    request = ExportRequest(
        targets=tuple(target or ()), profile=profile, run=run, model=model, out=out, force=force,
        overrides=tuple(set_ or ()), data=data,
    )
    results = run_export(request, console)
    table = Table("model", "target", "artifact", "size", "verification")
    for result in results:
        verification = result.manifest.get("verification", {})
        table.add_row(result.model_key, result.target, str(result.out_dir),
                      human_size(result.manifest.get("size_bytes", 0)), verification_summary(verification))
    console.print(table)


@app.command("ensemble")
def ensemble(
    artifacts: Annotated[
        list[Path],
        typer.Argument(help="2-16 onnx (or 2-16 onnx-int8) classifier artifacts, e.g. one per training seed"),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="the ensemble's artifact folder (new or empty)")],
    as_json: JsonOpt = False,
) -> None:
    """Combine classifier artifacts into one artifact with one graph: the mean of their class probabilities.

    lexiedge ensemble artifacts/seed0/onnx artifacts/seed1/onnx artifacts/seed2/onnx --out artifacts/ens3;
    apps, `lexiedge infer`, `eval`, `bench` and `serve` run it as one model (N times the size and latency).
    """
    from lexiedge.export.ensemble import ensemble as combine

    result = combine(artifacts, out)
    if as_json:
        _print_json({"path": str(result.out_dir), "size_bytes": result.manifest["size_bytes"],
                     "ensemble": result.manifest["ensemble"], "verification": result.manifest["verification"]})
        return
    console.print(f"wrote {_escape(str(result.out_dir))}: {_escape(result.summary)}", highlight=False,
                  soft_wrap=True)


@app.command("infer")
def infer(
    artifact: Annotated[Path, typer.Argument(help="an artifact directory written by `lexiedge export`")],
    files: Annotated[
        list[Path] | None, typer.Argument(help="video/audio files to classify (decoded as in training)")
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="chat with an LLM artifact: the user's message")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="most tokens to generate")] = 128,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="0 = greedy; above 0 samples")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0, help="nucleus sampling cut (with --temperature)")] = 1.0,
    device: Annotated[str, typer.Option(
        "--device", help="auto (TensorRT, CUDA, CPU), tensorrt, cuda, cpu; openvino (.onnx classifiers, [openvino])",
    )] = "auto",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="intra-op threads (default: ORT's)")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="probabilities shown per file")] = 3,
    allow_unverified: Annotated[
        bool, typer.Option("--allow-unverified", help="load an artifact whose export verification failed (warns)")
    ] = False,
    enroll: Annotated[
        list[Path] | None,
        typer.Option("--enroll", metavar="CLIP", help="a clip of the speaker (repeat it, at least the "
                     "manifest's enrollment.min_clips): classify FILEs with their profile"),
    ] = None,
    speaker: Annotated[
        Path | None,
        typer.Option("--speaker", metavar="PROFILE", help="a speaker profile saved by --save-speaker"),
    ] = None,
    save_speaker: Annotated[
        Path | None,
        typer.Option("--save-speaker", metavar="PROFILE", help="write the --enroll profile here (JSON)"),
    ] = None,
) -> None:
    """Run an artifact with the embeddable runtime: classify FILEs, or chat with --prompt.

    lexiedge infer artifacts/emotion-av/onnx clip.mp4 speech.wav;
    lexiedge infer artifacts/qwen-lora/onnx-int4 --prompt "Correct: She go to school.";
    a model normalised by its speaker: lexiedge infer ARTIFACT clip.wav --enroll calm1.wav --enroll calm2.wav
    """
    import warnings

    from lexiedge.errors import UsageError
    from lexiedge.caveats import tiny_lm_note
    from lexiedge.runtime import RuntimeInputError, UnverifiedArtifactWarning, load, read_manifest
    from lexiedge.runtime.chat import check_text
    from lexiedge_runtime.tasks import task_spec

    manifest = read_manifest(artifact)  # checks the artifact is one before the arguments are judged
    generates = task_spec(str(manifest.get("task")), str(artifact)).generates
    if generates and (files or prompt is None):
        raise UsageError(f"{artifact} ({manifest.get('task')}) generates text: pass --prompt TEXT, not files")
    if not generates and (prompt is not None or not files):
        raise UsageError(f"{artifact} ({manifest.get('task')}) classifies files: pass the FILEs to classify, not --prompt")
    _check_speaker_options(artifact, manifest, generates, enroll or [], speaker, save_speaker)
    if prompt is not None:
        try:  # before the model loads: an empty prompt or undecodable bytes are the command line's problem
            check_text(prompt, "--prompt")
        except RuntimeInputError as exc:
            raise UsageError(str(exc)) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnverifiedArtifactWarning)
        model = load(artifact, device, threads=threads, allow_unverified=allow_unverified)
    for warning in caught:  # one yellow line each, not Python's two-line warning format
        err_console.print(f"[yellow]warning:[/] {_escape(str(warning.message))}", highlight=False, soft_wrap=True)
    if generates:
        pieces = model.generate([{"role": "user", "content": prompt}], max_new_tokens=max_new_tokens,
                                temperature=temperature, top_p=top_p, stream=True)
        for piece in pieces:  # straight to stdout as tokens arrive (rich would buffer and mark them up)
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        note = tiny_lm_note(manifest)
        if note:  # on stderr: stdout stays the reply alone, for scripts
            err_console.print(f"[dim]{_escape(note)}[/]", highlight=False, soft_wrap=True)
        return
    profile = _speaker_profile(model, enroll or [], speaker, save_speaker)
    _classify_files(model, manifest, files or [], top, profile)


def _check_out_dir(out: Path | None, option: str = "--out") -> None:
    """An output folder that is an existing file is refused in one line (not a FileExistsError later)."""
    if out is not None and out.exists() and not out.is_dir():
        from lexiedge.errors import UsageError

        raise UsageError(f"{option} {out} is a file; pass a folder (it is created if missing)")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _check_speaker_options(artifact: Path, manifest: dict, generates: bool, enroll: list[Path],
                           speaker: Path | None, save_speaker: Path | None) -> None:
    """--enroll / --speaker / --save-speaker make sense together and for this artifact (before it loads)."""
    from lexiedge.errors import UsageError

    if not (enroll or speaker or save_speaker):
        return
    if generates or manifest.get("enrollment") is None:
        raise UsageError(f"{artifact} is not normalised by its speaker (its manifest has no enrollment "
                         "section): --enroll, --speaker and --save-speaker do not apply to it")
    if enroll and speaker is not None:
        raise UsageError("pass the speaker's clips (--enroll) or a saved profile (--speaker), not both")
    if save_speaker is not None and not enroll:
        raise UsageError("--save-speaker writes the profile --enroll makes: pass the speaker's clips with "
                         "--enroll")
    if save_speaker is not None and save_speaker.is_dir():
        raise UsageError(f"--save-speaker {save_speaker} is a folder; pass a file name (e.g. speaker.json)")
    if save_speaker is not None and not save_speaker.parent.is_dir():
        raise UsageError(f"--save-speaker {save_speaker}: no such folder {save_speaker.parent}; create it "
                         "first")


def _speaker_profile(model, enroll: list[Path], speaker: Path | None, save_speaker: Path | None):
    """The profile --enroll makes (saved with --save-speaker) or --speaker names; None: the global
    statistics."""
    from rich.markup import escape

    from lexiedge_runtime import SpeakerProfile

    if getattr(model, "enrollment", None) is None:
        return None
    if speaker is not None:
        profile = SpeakerProfile.load(speaker)
        source = f"{speaker}"
    elif enroll:
        profile = model.calibrate(enroll)
        source = f"{len(enroll)} --enroll clips"
        if save_speaker is not None:
            profile.save(save_speaker)
            source += f", saved to {save_speaker}"
    else:
        err_console.print("[dim]no speaker profile: normalised by the global training statistics (--enroll "
                          "CLIP ... adapts to the speaker)[/]", highlight=False, soft_wrap=True)
        return None
    err_console.print(f"[dim]speaker profile: {escape(source)}[/]", highlight=False, soft_wrap=True)
    return profile


def _classify_files(model, manifest: dict, files: list[Path], top: int, speaker=None) -> None:
    """Decode each file as the artifact's manifest records (else through its data plugin), classify it
    (with the ``speaker``'s profile when given); a bad file is one line, not the end."""
    from rich.markup import escape

    from lexiedge.errors import UsageError
    from lexiedge.plugin import get_host

    preprocessing = manifest.get("preprocessing") or {}
    if not preprocessing.get("data_plugin"):
        raise UsageError("the artifact's manifest names no data plugin (preprocessing.data_plugin) to decode files with")
    data_plugin = get_host().datasets.get(preprocessing["data_plugin"])  # an unknown one lists the installed
    # the runtime's own decoder when the manifest records it (what an app's predict_file runs); the data
    # plugin's for artifacts that predate the record or plugins whose files the runtime cannot decode
    recorded = preprocessing.get("media") is not None
    table = Table("file", "label", "expected", "top probabilities")
    table.columns[0].no_wrap = True  # file names whole (errors below name the full paths)
    failed = 0
    for path in files:
        try:
            if path.is_dir():  # the data plugin would only say "no such file"
                raise UsageError(f"{path} is a directory; pass the video/audio files in it (e.g. {path}/*.mp4)")
            if recorded:
                result = model.predict_file(path, speaker=speaker)
            else:
                decoded = data_plugin.decode_for_inference(preprocessing.get("data_settings") or {}, path)
                result = model.predict(**decoded, speaker=speaker)
        except LexiedgeError as exc:
            failed += 1
            message = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
            err_console.print(f"[yellow]skipped[/] {escape(message)}", highlight=False, soft_wrap=True)
            continue
        ranked = ", ".join(f"{label} {p:.2f}" for label, p in result.top(top))
        table.add_row(path.name, result.label, data_plugin.label_of(path) or "-", ranked)
    if table.row_count:
        console.print(table)
    if failed:
        raise LexiedgeError(f"{failed} of {len(files)} files could not be classified (see above)")


@app.command("bench")
def bench(
    artifacts: Annotated[list[Path], typer.Argument(help="artifact directories written by `lexiedge export`")],
    backends: Annotated[
        list[str] | None,
        typer.Option("--backends", "-b", help="comma-separated, first = baseline: torch, ort, ort-int8, ort-int4, "
                                              "ort-mobile, executorch, openvino (an onnx artifact, [openvino]) "
                                              "(default: torch, then each artifact's)"),
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="intra-op threads, the same for every backend")] = 2,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="classifier: untimed calls first")] = 10,
    iterations: Annotated[int, typer.Option("--iterations", "-n", min=1, help="classifier: timed calls")] = 50,
    rounds: Annotated[
        int | None, typer.Option("--rounds", min=1, help="classifier: interleaved rounds (10); LLM: timed generations (3)")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="classifier: clips per call")] = 1,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", min=1, help="LLM: prompt length")] = 64,
    new_tokens: Annotated[int, typer.Option("--new-tokens", min=2, help="LLM: greedy tokens generated")] = 32,
    seed: Annotated[int, typer.Option("--seed", help="seed of the random input clip")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="bench.json and bench.md (and bench.png) go here")] = Path(
        "bench-results"
    ),
    plot: Annotated[bool, typer.Option("--plot", help="also write bench.png (matplotlib)")] = False,
    all_formats: Annotated[
        bool,
        typer.Option("--all-formats", help="one table over every format and backend these artifacts run on "
                                           "here (torch eager, each artifact's runner, OpenVINO on fp32 .onnx), "
                                           "with size, max |Δ| vs eager and the verified metric: formats.json, "
                                           "formats.md, formats.png"),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Latency of artifacts across backends, measured in one run on the same inputs.

    lexiedge bench artifacts/emotion-av/onnx artifacts/emotion-av/onnx-int8 --plot;
    lexiedge bench artifacts/qwen-lora/onnx-int4 --backends torch,ort-int4;
    lexiedge bench --all-formats artifacts/emotion-av/* (every format, one table and plot).
    """
    from lexiedge.caveats import overhead_note
    from lexiedge.latency.report import console_table, write_reports
    from lexiedge.latency.run import BenchSettings, command_line, run_bench

    _check_out_dir(out)
    wanted = [name.strip() for value in backends or [] for name in value.split(",") if name.strip()]
    defaults = BenchSettings()
    settings = BenchSettings(
        threads=threads, warmup=warmup, iterations=iterations, batch=batch, seed=seed,
        prompt_tokens=prompt_tokens, new_tokens=new_tokens,
        rounds=rounds or defaults.rounds, llm_rounds=rounds or defaults.llm_rounds,
    )
    if all_formats:
        from lexiedge.errors import UsageError

        if wanted:
            raise UsageError("--all-formats runs every backend the artifacts offer; leave out --backends "
                             "(or drop --all-formats to pick backends)")
        _bench_all_formats(artifacts, settings, out, as_json)
        return
    report = run_bench(artifacts, settings, wanted or None, progress=lambda line: err_console.print(f"[dim]{line}[/]"))
    report.command = command_line(artifacts, report)
    if as_json:
        written = write_reports(report, out, with_plot=plot)
        _print_json({**report.to_json(), "written": [str(path) for path in written]})
        return
    table = console_table(report)  # never squeezed into a narrow terminal: cut numbers would mislead
    natural = console.measure(table, options=console.options.update_width(1000)).maximum
    Console(width=max(console.width, natural)).print(table)
    for path in write_reports(report, out, with_plot=plot):
        console.print(f"wrote {path}")
    if report.busy_warning:
        err_console.print(f"[yellow]warning:[/] {_escape(report.busy_warning)}", highlight=False, soft_wrap=True)
    baseline = report.results[0]
    note = overhead_note(max(r.model_bytes for r in report.results), baseline.kind == "torch" and len(report.results) > 1)
    if note:
        console.print(f"[dim]{_escape(note)}[/]", highlight=False, soft_wrap=True)


def _bench_all_formats(artifacts: list[Path], settings: BenchSettings, out: Path, as_json: bool) -> None:
    """`lexiedge bench --all-formats`: run, then print and write the one table (lexiedge.latency.formats)."""
    from lexiedge.latency.formats import command_line, run_all_formats
    from lexiedge.latency.formats_report import console_table, write_reports

    report = run_all_formats(
        artifacts, settings, progress=lambda line: err_console.print(f"[dim]{_escape(line)}[/]")
    )
    report.command = command_line(artifacts, report)
    written = write_reports(report, out)
    if as_json:
        _print_json({**report.to_json(), "written": [str(path) for path in written]})
        return
    table = console_table(report)
    natural = console.measure(table, options=console.options.update_width(1000)).maximum
    Console(width=max(console.width, natural)).print(table)
    for path in written:
        console.print(f"wrote {path}")
    if report.busy_warning:
        err_console.print(f"[yellow]warning:[/] {_escape(report.busy_warning)}", highlight=False,
                          soft_wrap=True)


@app.command("eval")
def evaluate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="run directories (PyTorch) and/or artifact directories (runtime); with --folds: "
                       "at most one run, whose recipe is cross-validated (or give --profile)"),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", "-d", help="labelled data (default: the run's recorded data; tutor: the JFLEG folder)"),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="classifier: train, val or test; JFLEG: dev or test")] = "test",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="eval.json and plots go here (default: evals/<time>)")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="score only the first N samples")] = None,
    folds: Annotated[
        int | None,
        typer.Option(
            "--folds",
            help="speaker-grouped K-fold cross-validation of a recipe: train K models, each tested on "
            "speakers it never heard (resumable: rerun the same command)",
        ),
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", metavar="NAME|PATH",
                                                   help="with --folds: the recipe to cross-validate")] = None,
    model: ModelOpt = None,
    set_: SetOpt = None,
    seeds: Annotated[
        list[int] | None,
        typer.Option(
            "--seed", help="with --folds: train every fold with this seed (repeatable; default: train.seed)"
        ),
    ] = None,
    val_groups: Annotated[
        int,
        typer.Option(
            "--val-groups",
            min=0,
            help="with --folds: training speakers held out per fold to pick the best epoch (default 0: the "
            "recipe's fixed epochs, final weights)",
        ),
    ] = 0,
    enroll: Annotated[
        str | None,
        typer.Option(
            "--enroll",
            metavar="neutral|K",
            help="score with each speaker's enrollment clips (their neutral and calm clips, or K at random): "
            "they give a speaker-normalising model its profile and are left out of the scored clips",
        ),
    ] = None,
    ensemble: Annotated[
        bool,
        typer.Option(
            "--ensemble",
            help="the paths are one model's members (e.g. seeds): score each and the mean of their class "
            "probabilities; with --folds and 2+ seeds: each fold's seed ensemble too",
        ),
    ] = False,
    only_folds: Annotated[
        list[int] | None,
        typer.Option(
            "--fold",
            help="with --folds: train and score only fold F (repeatable), to spread one cross-validation over "
            "processes or machines sharing --out; the same command without --fold then writes the whole report",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The task metric of runs and artifacts in one table: what each export costs; or, with --folds,
    a recipe's speaker-independent k-fold cross-validation.

    lexiedge eval runs/cpu/emotion-av/<time> artifacts/emotion-av/onnx artifacts/emotion-av/onnx-int8;
    lexiedge eval runs/cpu/qwen-lora/<time> artifacts/qwen-lora/onnx-int4 --data jfleg/ --split test;
    lexiedge eval --folds 5 --profile cpu --model emotion-av --data ravdess-speech/ --seed 0 --seed 1;
    lexiedge eval --folds 5 ... --out cv/ --fold 1 --fold 2 (and --fold 3 ... in a second process);
    lexiedge eval runs/cpu/emotion-av/seed-0 runs/cpu/emotion-av/seed-1 --ensemble.
    """
    if folds is not None:
        _cross_validate(paths or [], folds=folds, profile=profile, model=model, overrides=set_ or [],
                        data=data, out=out, seeds=seeds, val_groups=val_groups, enroll=enroll,
                        ensemble=ensemble, only_folds=only_folds or [], as_json=as_json)
        return
    from lexiedge.errors import UsageError

    for name, given in (("--profile", profile), ("--model", model), ("--set", set_), ("--seed", seeds),
                        ("--val-groups", val_groups), ("--fold", only_folds)):
        if given:
            raise UsageError(f"{name} applies to --folds (cross-validation of a recipe); to score runs or "
                             "artifacts, pass their directories")
    from lexiedge.evaluate import evaluate as run_eval
    from lexiedge.evaluate import print_table

    report = run_eval(paths or [], data=data, split=split, out=out, limit=limit,
                      console=err_console if as_json else console, enroll=enroll, ensemble=ensemble)
    if as_json:  # what eval.json holds, and where it is
        import json

        _print_json({**json.loads(report.path.read_text()), "path": str(report.path)})
        return
    print_table(report.results, report.primary_metric, console)
    console.print(f"wrote {report.path}", highlight=False)


def _cross_validate(paths: list[Path], *, folds: int, profile: str | None, model: str | None,
                    overrides: list[str], data: Path | None, out: Path | None, seeds: list[int] | None,
                    val_groups: int, enroll: str | None, ensemble: bool, only_folds: list[int],
                    as_json: bool) -> None:
    """`lexiedge eval --folds K`: the recipe of --profile/--model (or of one run directory), k-fold."""
    import time

    from lexiedge.crossval import CrossValRequest, cross_validate, print_report
    from lexiedge.evaluate import EVALS_DIR, folds_recipe

    loaded, model_key, data = folds_recipe(paths, profile=profile, model=model, overrides=overrides,
                                           data=data)
    if not seeds:
        seeds = [int(getattr(loaded.model(model_key).train.settings, "seed", 0))]
    request = CrossValRequest(profile=loaded, model_key=model_key, data=data, folds=folds,
                              out=out or EVALS_DIR / f"crossval-{time.strftime('%Y%m%d-%H%M%S')}",
                              seeds=tuple(dict.fromkeys(seeds)), val_groups=val_groups, enroll=enroll,
                              ensemble=ensemble, only_folds=tuple(sorted(set(only_folds))))
    report = cross_validate(request, err_console if as_json else console)
    if as_json:
        _print_json({**report.summary, "path": str(report.path)})
        return
    print_report(report, console)
    console.print(f"wrote {report.path}", highlight=False)
    if only_folds:
        console.print(f"folds {', '.join(map(str, request.only_folds))} of {folds} only: once every fold has run, "
                      "the same command without --fold writes the report of all of them", highlight=False)


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="where everything goes")] = Path("lexiedge-demo"),
    quick: Annotated[bool, typer.Option("--quick", help="fewer epochs, prompts and iterations (CI); same steps")] = False,
    force: Annotated[bool, typer.Option("--force", help="replace an existing --out directory")] = False,
) -> None:
    """The whole pipeline on synthetic data, offline, on the CPU, in a few minutes.

    Synthesises emotion clips, trains both models with the cpu profile, merges the adapter, exports
    onnx/int8/int4, verifies, benchmarks, runs the runtime on a clip and a prompt, and reports where
    everything is. Every step is printed as the lexiedge command that repeats it.
    """
    from lexiedge.demo import render_report, run_demo

    _check_out_dir(out)
    report = run_demo(out, quick=quick, force=force, console=console, lexiedge=main)
    render_report(report, console)


@app.command(
    "serve",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,  # --help is the server's own (its options live in the runtime distribution)
)
def serve(ctx: typer.Context) -> None:
    """Serve artifacts over HTTP: OpenAI-compatible chat, emotion, health (`lexiedge serve --help`).

    lexiedge serve artifacts/qwen-lora/onnx-int4 artifacts/emotion-av/onnx-int8 [--host 127.0.0.1]
    [--port 8000] [--api-key KEY]; then any OpenAI client with base_url http://127.0.0.1:8000/v1.
    """
    from lexiedge_runtime.serve.cli import main as serve_main

    raise typer.Exit(serve_main(ctx.args, prog="lexiedge serve"))


def _build_app(args: list[str]) -> typer.Typer:
    from lexiedge.plugin import get_host

    if args[:1] != ["serve"]:  # the server runs on the runtime alone: no plugin (and so no torch) is imported
        get_host().add_data_commands(data_app)
    return app


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one line per user error, exit 2 for bad input."""
    from rich.markup import escape

    from lexiedge.errors import describe_os_error

    try:
        args = list(sys.argv[1:] if argv is None else argv)
        code = _build_app(args)(args=args, standalone_mode=False)
        if isinstance(code, int) and code:  # click returns typer.Exit(code)'s code when not standalone
            return code
    except LexiedgeError as exc:  # escaped: a message quoting "[...]" must not be read as rich markup
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except typer.TyperException as exc:
        # With standalone_mode=False, usage errors (no such command or option, a missing --profile, a bare
        # `lexiedge`) arrive here as the click exceptions typer bundles (typer._click, a subclass of
        # TyperException since typer 0.2x; pinned in pyproject.toml): click's own usage message, exit 2.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"error: {escape(exc.format_message())}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except OSError as exc:
        message = describe_os_error(exc)  # a full disk, a read-only or forbidden folder: the machine, not a bug
        if message is None:
            raise
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
