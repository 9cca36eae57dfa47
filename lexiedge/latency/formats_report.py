"""What `lexiedge bench --all-formats` writes: ``formats.json``, ``formats.md`` (one markdown table),
``formats.png`` (latency or decode speed against model size, one point per row), and the console table.

Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from lexiedge import atomic
from lexiedge.figures import save_png
from lexiedge.latency.formats import TORCH, FormatRow, FormatsReport
from lexiedge.latency.run import CAUSAL_LM

if TYPE_CHECKING:
    from matplotlib.figure import Figure

JSON_FILE, MARKDOWN_FILE, PLOT_FILE = "formats.json", "formats.md", "formats.png"
MB = 1e6
DASH = "-"

Column = tuple[str, Callable[[FormatRow], str]]


def _number(value: float | None, spec: str) -> str:
    return DASH if value is None else format(value, spec)


def _verified(row: FormatRow) -> str:
    if row.backend == TORCH:
        return "reference"
    return {True: "yes", False: "FAILED"}.get(row.verified, "not recorded")  # type: ignore[arg-type]


def _metric(row: FormatRow) -> str:
    metric = row.metric
    if not isinstance(metric.get("artifact"), (int, float)):
        return DASH
    return f"{str(metric.get('name', '')).upper()} {metric['artifact']:.3f} ({metric.get('delta', 0.0):+.3f})"


def _measured(cell: Callable[[FormatRow], str]) -> Callable[[FormatRow], str]:
    return lambda row: cell(row) if row.result is not None else DASH


def _columns(report: FormatsReport) -> list[Column]:
    baseline = report.baseline or TORCH
    ratio_name = "x eager" if baseline == TORCH else f"x {baseline}"
    head: list[Column] = [("format", lambda r: r.format), ("backend", lambda r: r.backend)]
    tail: list[Column] = [
        ("size MB", lambda r: f"{r.size_bytes / MB:.2f}" if r.size_bytes else DASH),
        ("verified", _verified),
        ("max \\|Δ\\| vs eager, here", lambda r: _number(r.max_abs_diff_vs_eager, ".2g")),
        ("max \\|Δ\\| at export", lambda r: _number(r.manifest_max_abs_diff, ".2g")),
        ("agreement at export", lambda r: DASH if r.agreement is None else f"{r.agreement:.1%}"),
        ("metric at export (Δ)", _metric),
        ("note", lambda r: r.note),
    ]
    if report.task == CAUSAL_LM:
        timing: list[Column] = [
            ("decode tok/s", _measured(lambda r: f"{r.result.generation['decode_tokens_per_s']:.1f}")),
            ("TTFT ms", _measured(lambda r: f"{r.result.generation['ttft_ms']:.0f}")),
            ("step p99 ms", _measured(lambda r: f"{r.result.latency_ms['p99']:.1f}")),
            (f"{ratio_name} (tok/s)", _measured(lambda r: f"{r.result.speedup:.2f}x")),
        ]
    else:
        timing = [
            ("p50 ms", _measured(lambda r: f"{r.result.latency_ms['p50']:.2f}")),
            ("p99 ms", _measured(lambda r: f"{r.result.latency_ms['p99']:.2f}")),
            (f"{ratio_name} (p50)", _measured(lambda r: f"{r.result.ratio:.2f}x")),
        ]
    return [*head, *timing, *tail]


def _title(report: FormatsReport) -> str:
    what = "decode speed" if report.task == CAUSAL_LM else "latency"
    return f"{report.model}: {what} of every format and backend ({len(report.rows)} rows)"


def _protocol(report: FormatsReport) -> str:
    settings = report.settings
    if report.task == CAUSAL_LM:
        shape = f"{report.inputs['prompt_tokens']}-token prompt, {report.inputs['new_tokens']} greedy tokens"
        timed = (
            f"one warm-up generation, then {settings.llm_rounds} timed generations per backend, interleaved"
        )
        delta = (
            "max |Δ| is not measured for LLMs here (generation compares tokens, not one clip's logits): the "
            "agreement and metric columns are verification's, from the manifest"
        )
    else:
        shape = ", ".join(f"{name} {tuple(value)}" for name, value in report.inputs.items())
        timed = (
            f"{settings.warmup} warm-up calls, then {settings.iterations} timed calls per backend in "
            f"{min(settings.rounds, settings.iterations)} interleaved rounds"
        )
        delta = (
            "max |Δ| vs eager: this run's clip, every backend against PyTorch eager; at export: "
            "verification's (validation clips), from the manifest"
        )
    return f"{settings.threads} intra-op threads for every backend; {shape}; {timed}. {delta}."


def markdown(report: FormatsReport) -> str:
    columns = _columns(report)
    machine = report.machine
    load = machine.get("load") or {}
    start, end = load.get("start") or {}, load.get("end") or {}
    lines = [f"# {_title(report)}", ""]
    if report.command:
        lines += [f"`{report.command}`", ""]
    if report.busy_warning:
        lines += [f"**Warning: {report.busy_warning}.**", ""]
    lines += [
        "| " + " | ".join(name for name, _ in columns) + " |",
        "|"
        + "|".join("---" if i < 2 or name == "note" else "---:" for i, (name, _) in enumerate(columns))
        + "|",
    ]
    lines += [
        "| "
        + " | ".join(cell(row).replace("|", "\\|") if name == "note" else cell(row) for name, cell in columns)
        + " |"
        for row in report.rows
    ]
    lines += [
        "",
        f"{_protocol(report)} Machine: {machine.get('processor')}, {machine.get('cpu_count')} cores; "
        "load average "
        f"{start.get('load_average_1m')} at the start, {end.get('load_average_1m')} at the end; CPU steal "
        f"{start.get('steal')} / {end.get('steal')}. {report.created}.",
        "",
    ]
    return "\n".join(lines)


def console_table(report: FormatsReport) -> Table:
    columns = _columns(report)
    table = Table(title=_title(report), caption=report.busy_warning)
    for index, (name, _) in enumerate(columns):
        header = name.replace("\\|", "|")
        table.add_column(
            header, no_wrap=index < 2, justify="left" if index < 2 or name == "note" else "right"
        )
    for row in report.rows:
        table.add_row(*(cell(row) for _, cell in columns))
    return table


def figure(report: FormatsReport) -> Figure:
    """One horizontal bar per measured row, labelled with its format, backend and size: p50 latency with
    its p99 mark (LLMs: decode tokens/s); a log axis when the rows differ by more than 10x."""
    from matplotlib.figure import Figure

    rows = [row for row in report.rows if row.result is not None]
    fig = Figure(figsize=(8.0, 1.4 + 0.45 * len(rows)))
    axis = fig.subplots()
    names = [f"{row.format} / {row.backend}\n{row.size_bytes / MB:.2f} MB" for row in rows]
    positions = list(range(len(rows)))[::-1]  # the table's order, top to bottom
    if report.task == CAUSAL_LM:
        values = [row.result.generation["decode_tokens_per_s"] for row in rows]  # type: ignore[union-attr]
        axis.set_xlabel("decode tokens/s (higher is better)")
        speedups = [row.result.speedup for row in rows]  # type: ignore[union-attr]
        labels = [f"{value:.1f} tok/s, {speedup:.2f}x" for value, speedup in zip(values, speedups)]
        tails = values
    else:
        values = [row.result.latency_ms["p50"] for row in rows]  # type: ignore[union-attr]
        tails = [row.result.latency_ms["p99"] for row in rows]  # type: ignore[union-attr]
        axis.scatter(tails, positions, marker="|", s=200, color="tab:red", label="p99", zorder=3)
        axis.set_xlabel("latency per call, ms (lower is better): bar p50, red mark p99")
        ratios = [row.result.ratio for row in rows]  # type: ignore[union-attr]
        labels = [f"{value:.3g} ms, {ratio:.2f}x" for value, ratio in zip(values, ratios)]
    axis.barh(positions, values, color=["tab:gray" if row.backend == TORCH else "tab:blue" for row in rows])
    for position, value, tail, label in zip(positions, values, tails, labels):  # right of the p99 mark
        axis.annotate(
            label,
            (max(value, tail), position),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    axis.set_yticks(positions, names, fontsize=7)
    if values and max(tails) > 10 * max(min(values), 1e-9):
        axis.set_xscale("log")
    axis.set_title(
        _title(report) + ("\n" + report.busy_warning[:100] + "..." if report.busy_warning else ""), fontsize=8
    )
    axis.margins(x=0.3)
    fig.tight_layout()
    return fig


def write_reports(report: FormatsReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        atomic.write_json(out_dir / JSON_FILE, report.to_json()),
        atomic.write_text(out_dir / MARKDOWN_FILE, markdown(report)),
    ]
    if any(row.result is not None for row in report.rows):
        written.append(save_png(figure(report), out_dir / PLOT_FILE))
    return written
