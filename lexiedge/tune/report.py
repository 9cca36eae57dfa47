"""What a search reports besides its per-trial lines: the study plot, and the best trial as a profile."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lexiedge import atomic
from lexiedge.errors import UsageError
from lexiedge.tune import folder as layout


def draw_study(
    trials: list[dict[str, Any]],
    found: dict[str, float] | None,
    metric: str,
    direction: str,
    path: Path,
    importance_after: int = 2,
) -> Path | None:
    """study.png: each trial's metric (complete, pruned) with the best so far; the parameters' importances."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from lexiedge.figures import save_png

    scored = [t for t in trials if t["value"] is not None and t["state"] in ("complete", "pruned")]
    if not scored:
        return None
    figure = Figure(figsize=(12, 4.2), layout="constrained")  # room for the parameters' names
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    complete = [t for t in scored if t["state"] == "complete"]
    pruned = [t for t in scored if t["state"] == "pruned"]
    left.scatter(
        [t["number"] for t in complete],
        [t["value"] for t in complete],
        color="tab:blue",
        label="complete",
        zorder=3,
    )
    if pruned:
        left.scatter(
            [t["number"] for t in pruned],
            [t["value"] for t in pruned],
            color="tab:gray",
            marker="x",
            label="pruned (best before it stopped)",
            zorder=3,
        )
    best_line, best = [], None
    for trial in sorted(complete, key=lambda t: t["number"]):
        value = trial["value"]
        if best is None or (value > best if direction == "maximize" else value < best):
            best = value
        best_line.append((trial["number"], best))
    if best_line:
        last = max(t["number"] for t in scored)
        xs, ys = zip(*best_line, (last, best_line[-1][1]))
        left.step(xs, ys, where="post", color="tab:red", label="best so far")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("trial")
    left.set_ylabel(f"{metric} ({'higher' if direction == 'maximize' else 'lower'} is better)")
    left.set_title(f"{len(complete)} complete, {len(pruned)} pruned")
    left.grid(alpha=0.3)
    left.legend(loc="best", fontsize="small")
    if found:
        names = list(found)[::-1]
        right.barh(names, [found[name] for name in names], color="tab:green")
        right.set_xlabel("importance (PED-ANOVA)")
        right.set_title(f"over {len(complete)} complete trials")
    else:
        right.axis("off")
        right.text(
            0.5,
            0.5,
            f"parameter importances: after {importance_after} complete trials",
            ha="center",
            va="center",
        )
    return save_png(figure, path)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_params(params: dict[str, Any]) -> str:
    """``lr=0.0012 dropout=0.21``: each parameter by the last part of its name when that is unambiguous."""
    short = {name: name.rsplit(".", 1)[-1] for name in params}
    counts = {value: list(short.values()).count(value) for value in short.values()}
    return " ".join(
        f"{short[name] if counts[short[name]] == 1 else name}={format_value(value)}"
        for name, value in params.items()
    )


# --- the best trial as a profile -----------------------------------------------------------------


def write_best_profile(record: dict[str, Any], folder: Path, dest: Path) -> Path:
    """``dest``: a profile that ``extends:`` the searched one and sets the best trial's values (and the
    search's --set options), checked to load to exactly what the best trial trained, then moved into place.
    """
    from lexiedge.plugin import get_host
    from lexiedge.profile import apply_overrides, load_profile
    from lexiedge.train.resume import compare
    from lexiedge.tune.space import SearchSpace, param_from_yaml

    request, best = record["request"], record.get("best")
    if not best:
        raise UsageError("no trial completed, so there is no best profile to write (see the trials above)")
    model_key = request["model"]
    params = [param_from_yaml(name, entry, model_key) for name, entry in request["space"]["space"].items()]
    space = SearchSpace(tuple(params))
    tuned = space.overrides(model_key, best["params"])
    lines = [*request["sets"], *tuned]
    dest = dest.resolve() if dest.is_absolute() else Path.cwd() / dest
    document: dict[str, Any] = {
        "extends": _extends(request, dest.parent),
        "description": f"{request['profile_name']} with the settings of trial {best['number']} "
        f"of {folder.resolve()}",
    }
    document = apply_overrides(document, lines)
    header = (
        f"# lexiedge tune: trial {best['number']} of {len(record.get('trials') or [])}, "
        f"{request.get('objective', request['metric'])} {format_value(best['value'])}\n"
        f"# lexiedge train --profile {dest.name} --model {model_key}"
        + (f" --data {request['data']}" if request.get("data") else "")
        + "\n"
    )
    text = header + yaml.safe_dump(document, sort_keys=False)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(dest, suffix=".tmp.yaml") as tmp:
        tmp.write_text(text, encoding="utf-8")
        written = load_profile(tmp, host=get_host())
        # what the best trial trained: the search's resolved profile with its --set lines
        trained = load_profile(folder / layout.PROFILE_YAML, tuned, host=get_host())
        changes = compare(trained, written, model_key, None, None)
        if changes:
            raise UsageError(
                f"{dest}: the written profile would not train trial {best['number']}'s settings "
                f"({changes[0].describe()}); not written"
            )
    return dest


def _extends(request: dict[str, Any], directory: Path) -> str:
    """The searched profile as `extends:` from ``directory``: its name when it is a built-in, else a path."""
    from lexiedge.profile import builtin_profiles_dir

    source = Path(request["profile_source"])
    argument = str(request["profile"])
    if source.parent.resolve() == builtin_profiles_dir().resolve() and argument == source.stem:
        return argument
    return os.path.relpath(source, directory)
