"""The `lexiedge` command line: thin wrappers over the pipeline, the planner and the plugin host.

Every user error is a :class:`~lexiedge.errors.LexiedgeError`, printed as one line on stderr with its
exit code (2 for bad input); tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from lexiedge import __version__
from lexiedge.errors import LexiedgeError, NotAvailableError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="lexiedge",
    help="Train small models on small GPUs and ship them to phones and desktops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
profiles_app = typer.Typer(help="List and show hardware profiles.", invoke_without_command=True)
data_app = typer.Typer(help="Data tools from the dataset plugins (synthetic sets, statistics, conversions).", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")
app.add_typer(data_app, name="data")

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="a name from profiles/ or a path to a YAML file")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="one model of the profile (default: all)")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="override a profile key: models.emotion-av.train.lr=3e-4 (repeatable)"),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"lexiedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """lexiedge: train -> merge -> quantize -> export -> verify -> benchmark -> runtime, driven by profiles."""


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
) -> None:
    """Validate a profile and print it resolved (after `extends` and `--set`)."""
    from lexiedge.profile import load_profile

    profile = load_profile(name, set_ or [])
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
def plan(profile: ProfileOpt, model: ModelOpt = None, set_: SetOpt = None) -> None:
    """Memory plan before training: parameters, weights, gradients, optimizer, activations, data; fits or not."""
    from lexiedge.plan import plan_profile, render_plan
    from lexiedge.profile import load_profile

    loaded = load_profile(profile, set_ or [])
    keys = [model] if model else list(loaded.models)
    for key in keys:
        loaded.model(key)
    for key in keys:
        render_plan(plan_profile(loaded, key), console)


@app.command("train")
def train(
    profile: ProfileOpt,
    model: ModelOpt = None,
    data: Annotated[
        Optional[list[str]], typer.Option("--data", "-d", help="training data: PATH, or MODEL=PATH (repeatable)")
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="run directory (default runs/<profile>/<model>/<time>)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the newest run (or --out) from its last checkpoint")] = False,
    set_: SetOpt = None,
) -> None:
    """Train the profile's models (or one with --model) and write run directories."""
    from lexiedge import pipeline
    from lexiedge.profile import load_profile

    loaded = load_profile(profile, set_ or [])
    keys = [model] if model else list(loaded.models)
    for key in keys:
        loaded.model(key)
    request = pipeline.TrainRequest(
        profile=loaded,
        model_keys=keys,
        data=pipeline.parse_data_args(data or [], keys),
        out=out,
        resume=resume,
    )
    for result in pipeline.train(request, console):
        console.print(f"[green]done[/] {result.run_dir}")


@app.command("merge")
def merge(
    run: Annotated[Path, typer.Argument(help="a run directory written by `lexiedge train`")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="output directory (default RUN/merged)")] = None,
) -> None:
    """Merge a LoRA run's adapter into its base model: a self-contained model directory."""
    from lexiedge.pipeline import load_run_profile
    from lexiedge.plugin import get_host

    profile, key = load_run_profile(run)
    plugin = get_host().models.get(profile.model(key).model.plugin)
    report = plugin.merge(run, out or run / "merged", console)
    console.print_json(data=report)


# --- later stages ---------------------------------------------------------------------------


@app.command("export")
def export(
    target: Annotated[
        Optional[list[str]], typer.Option("--target", "-t", help="exporter plugin, e.g. onnx, onnx-int8 (repeatable)")
    ] = None,
    profile: Annotated[
        Optional[str], typer.Option("--profile", "-p", help="profile whose newest runs (and export targets) to use")
    ] = None,
    run: Annotated[Optional[Path], typer.Option("--run", help="run directory (default: the profile's newest run)")] = None,
    model: ModelOpt = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="artifact directory (several exports: their parent)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing artifact directory")] = False,
    data: Annotated[
        Optional[Path], typer.Option("--data", "-d", help="verification data, when the run's recorded data moved")
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Export a run to a verified artifact directory: artifacts/<model>/<target>/ with manifest.json.

    lexiedge export --target onnx --run runs/cpu/emotion-av/20260101-120000;
    lexiedge export --profile cpu (every target the profile lists, newest run of each model).
    """
    from lexiedge.export import ExportRequest
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
                      f"{result.manifest.get('size_bytes', 0) / 1e6:.2f} MB", _verification_summary(verification))
    console.print(table)


def _verification_summary(report: dict) -> str:
    """One cell: the numbers that decided the export (max |logit diff|, top-1 or token agreement)."""
    numbers = report.get("validation", report)  # classifiers report per split; LLMs at the top
    diffs = numbers.get("max_abs_diff") or {}
    worst = max((v for v in diffs.values() if isinstance(v, (int, float))), default=None)
    parts = [] if worst is None else [f"max|diff| {worst:.2g}"]
    for key, label in (("top1_agreement", "top-1"), ("token_agreement", "tokens")):
        if isinstance(numbers.get(key), (int, float)):
            parts.append(f"{label} {numbers[key]:.1%}")
    return ", ".join(parts) or ("passed" if report.get("passed") else "-")


@app.command("infer", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def infer(artifact: Annotated[Path, typer.Argument(help="an artifact directory")]) -> None:
    """Run an exported artifact on files or a prompt (the embeddable runtime)."""
    raise NotAvailableError("lexiedge infer: the runtime is not part of this version yet")


@app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(artifacts: Annotated[list[Path], typer.Argument(help="artifact directories")]) -> None:
    """Latency benchmarks of artifacts across backends."""
    raise NotAvailableError("lexiedge bench: latency benchmarks are not part of this version yet")


@app.command("demo")
def demo() -> None:
    """The whole pipeline on synthetic data, offline, on the CPU, in a few minutes."""
    raise NotAvailableError("lexiedge demo: needs export and runtime, which are not part of this version yet")


def _build_app() -> typer.Typer:
    from lexiedge.plugin import get_host

    get_host().add_data_commands(data_app)
    return app


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one line per user error, exit 2 for bad input."""
    try:
        _build_app()(args=argv, standalone_mode=False)
    except LexiedgeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except Exception as exc:  # click's usage errors arrive here with standalone_mode=False
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
