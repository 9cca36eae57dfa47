"""What `lexiedge bench` writes: ``bench.json``, ``bench.md`` (a markdown table), ``bench.png`` (--plot),
and the same table on the console.

Every file is written to a temporary name and renamed into place, so a failed run leaves the
previous results whole.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from lexiedge import atomic
from lexiedge.latency.run import CAUSAL_LM, BackendResult, BenchReport
from lexiedge.figures import save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

JSON_FILE, MARKDOWN_FILE, PLOT_FILE = "bench.json", "bench.md", "bench.png"
MB = 1e6

Column = tuple[str, Callable[[BackendResult], str]]


def _columns(report: BenchReport) -> list[Column]:
    baseline = report.baseline
    common_tail: list[Column] = [
        ("peak memory MB", lambda r: f"{r.peak_memory_bytes / MB:.0f}"),
        ("model MB", lambda r: f"{r.model_bytes / MB:.1f}"),
        ("load s", lambda r: f"{r.load_s:.2f}"),
    ]
    if report.task == CAUSAL_LM:
        return [
            ("backend", lambda r: r.name),
            ("decode tok/s", lambda r: f"{r.generation['decode_tokens_per_s']:.1f}"),
            (f"x {baseline}", lambda r: f"{r.speedup:.2f}x"),
            ("prefill ms", lambda r: f"{r.generation['prefill_ms']:.0f}"),
            ("TTFT ms", lambda r: f"{r.generation['ttft_ms']:.0f}"),
            ("step p50 ms", lambda r: f"{r.latency_ms['p50']:.1f}"),
            ("step p90 ms", lambda r: f"{r.latency_ms['p90']:.1f}"),
            ("step p99 ms", lambda r: f"{r.latency_ms['p99']:.1f}"),
            *common_tail,
        ]
    return [
        ("backend", lambda r: r.name),
        ("p50 ms", lambda r: f"{r.latency_ms['p50']:.2f}"),
        ("p90 ms", lambda r: f"{r.latency_ms['p90']:.2f}"),
        ("p99 ms", lambda r: f"{r.latency_ms['p99']:.2f}"),
        (f"x {baseline}", lambda r: f"{r.speedup:.2f}x"),  # speed-up over the first backend, as for LLMs
        ("clips/s", lambda r: f"{r.throughput:.1f}"),
        *common_tail,
    ]


SHORT_HEADERS = {"peak memory MB": "peak MB", "model MB": "size MB", "decode tok/s": "tok/s"}


def console_table(report: BenchReport) -> Table:
    """The markdown table's columns with shorter headers; backend names are never cut (tests, scripts grep them)."""
    columns = _columns(report)
    table = Table(title=_title(report))
    longest = max(len(result.name) for result in report.results)
    for index, (name, _) in enumerate(columns):
        header = SHORT_HEADERS.get(name, name)
        if index == 0:
            table.add_column(header, no_wrap=True, min_width=longest)
        else:
            table.add_column(header, justify="right")
    for result in report.results:
        table.add_row(*(cell(result) for _, cell in columns))
    return table


def markdown(report: BenchReport) -> str:
    columns = _columns(report)
    lines = [
        f"# {_title(report)}",
        "",
        f"`{report.command}`" if report.command else "",
        "",
        "| " + " | ".join(name for name, _ in columns) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|",
    ]
    lines += ["| " + " | ".join(cell(result) for _, cell in columns) + " |" for result in report.results]
    machine = report.machine
    lines += [
        "",
        f"{report.settings.threads} intra-op threads for every backend; inputs {_inputs(report)}; "
        f"{_protocol(report)}. Machine: {machine.get('processor')}, {machine.get('cpu_count')} cores, "
        f"1-min load average {machine.get('load_average_1m')} at the start (timings from a shared machine are noisy).",
        "",
    ]
    if report.busy_warning:
        lines += [f"**Warning: {report.busy_warning}.**", ""]
    return "\n".join(lines)


def _title(report: BenchReport) -> str:
    what = "decode speed" if report.task == CAUSAL_LM else "latency"
    return f"{report.model} {what}, {len(report.results)} backends, speed-ups vs {report.baseline}"


def _inputs(report: BenchReport) -> str:
    if report.task == CAUSAL_LM:
        return (
            f"{report.inputs['prompt_tokens']}-token prompt, {report.inputs['new_tokens']} greedy new tokens"
        )
    return ", ".join(f"{name} {tuple(shape)}" for name, shape in report.inputs.items())


def _protocol(report: BenchReport) -> str:
    settings = report.settings
    if report.task == CAUSAL_LM:
        return (
            f"one warm-up generation, then {settings.llm_rounds} timed generations per backend, interleaved"
        )
    return (
        f"{settings.warmup} warm-up calls, then {settings.iterations} timed calls per backend in "
        f"{min(settings.rounds, settings.iterations)} interleaved rounds"
    )


LOG_AXIS_SPREAD = 10.0  # slowest tail over fastest p50 beyond which the latency axis is logarithmic


def latency_figure(report: BenchReport) -> Figure:
    """Bar chart: p50 latency with p90/p99 marks (classifiers; a log axis when backends differ by more than
    LOG_AXIS_SPREAD), decode tokens/s (LLMs); each bar labelled with its value and its speed-up over the first."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1.6 + 1.3 * len(report.results), 4.0))
    axis = figure.subplots()
    names = [result.name for result in report.results]
    if report.task == CAUSAL_LM:
        values = [result.generation["decode_tokens_per_s"] for result in report.results]
        bars = axis.bar(names, values, color="tab:green")
        axis.set_ylabel("decode tokens/s (higher is better)")
        labels = [f"{v:.1f}\n{r.speedup:.1f}x" for v, r in zip(values, report.results)]
    else:
        values = [result.latency_ms["p50"] for result in report.results]
        bars = axis.bar(names, values, color="tab:blue", label="p50")
        for percentile, colour in (("p90", "black"), ("p99", "tab:red")):
            tail = [r.latency_ms[percentile] for r in report.results]
            axis.scatter(names, tail, marker="_", s=400, color=colour, label=percentile)
        axis.set_ylabel("latency per call, ms (lower is better)")
        # above the highest mark of each bar (its p99), never on a marker; speed-ups, as the demo reports them
        for index, result in enumerate(report.results):
            top = max(result.latency_ms["p99"], result.latency_ms["p90"], values[index])
            axis.annotate(f"{values[index]:.3g} ms\n{result.speedup:.3g}x", (index, top), xytext=(0, 4),
                          textcoords="offset points", ha="center", va="bottom", fontsize=8)
        labels = None
        highest = max(max(r.latency_ms["p99"] for r in report.results), max(values))
        if highest > LOG_AXIS_SPREAD * min(values):  # one slow backend would flatten every other bar
            axis.set_yscale("log")
            axis.set_ylabel("latency per call, ms, log scale (lower is better)")
        # the legend above the plot: it never covers a bar or a p90/p99 mark
        axis.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=3, fontsize=8, frameon=False)
    if labels is not None:
        axis.bar_label(bars, labels=labels, fontsize=8)
    if max(len(name) for name in names) > 10:  # "ort-int8:<dir>" names: slanted so they do not overlap
        axis.tick_params(axis="x", labelrotation=20)
        for label in axis.get_xticklabels():
            label.set_horizontalalignment("right")
    axis.set_title(_title(report), fontsize=9, pad=22 if report.task != CAUSAL_LM else 6)  # room for the legend
    axis.margins(y=0.25)
    figure.tight_layout()
    return figure


def plot(report: BenchReport, path: Path) -> Path:
    return save_png(latency_figure(report), path)


def write_reports(report: BenchReport, out_dir: Path, *, with_plot: bool) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        atomic.write_json(out_dir / JSON_FILE, report.to_json()),
        atomic.write_text(out_dir / MARKDOWN_FILE, markdown(report)),
    ]
    if with_plot:
        written.append(plot(report, out_dir / PLOT_FILE))
    return written
