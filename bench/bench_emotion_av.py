"""emotion-av latency at batch 1: PyTorch eager vs ONNX Runtime fp32 vs int8, interleaved in one run.

    python bench/bench_emotion_av.py                          # rtx3050-4gb and t4-16gb sizes, 2 threads
    python bench/bench_emotion_av.py --profiles rtx3050-4gb --iterations 200 --rounds 20

The artifacts are exported by `lexiedge export`'s own code from random-weight runs of each
profile's model section (:mod:`emotion_av_artifacts`, cached), and measured by `lexiedge bench`'s
code (:func:`lexiedge.latency.run.run_bench`): all backends loaded and warmed up, then timed in interleaved
rounds on the same seeded clip with the same thread count. Prints the table, each backend's p50 as a
ratio of eager's, and the issue's target (rtx3050-4gb: int8 <= 0.5x eager); writes bench.json/.md
per profile under --out. The equivalent command on artifacts of your own:

    lexiedge bench artifacts/emotion-av/onnx artifacts/emotion-av/onnx-int8 --backends torch,ort,ort-int8
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion_av_artifacts import PROFILES, artifacts
from rich.console import Console

from lexiedge.latency.run import BenchSettings, run_bench
from lexiedge.latency.report import console_table, write_reports

TARGETS = {"rtx3050-4gb": ("ort-int8", 0.5)}  # profile -> (backend, most p50 latency as a share of eager's)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated profile names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()

    console = Console()
    settings = BenchSettings(
        threads=args.threads, warmup=args.warmup, iterations=args.iterations, rounds=args.rounds
    )
    for profile in args.profiles.split(","):
        built = artifacts(profile, console)
        report = run_bench(
            [built["onnx"], built["onnx-int8"]],
            settings,
            ["torch", "ort", "ort-int8"],
            progress=lambda line: console.print(f"[dim]{line}[/]"),
        )
        report.command = (
            f"python bench/bench_emotion_av.py --profiles {profile} --threads {args.threads} "
            f"--iterations {args.iterations} --rounds {args.rounds} --warmup {args.warmup}"
        )
        console.print(console_table(report))
        write_reports(report, args.out / f"emotion-av-{profile}", with_plot=True)
        for result in report.results[1:]:
            line = (
                f"{profile}: {result.name} p50 = {result.ratio:.3f}x eager ({result.latency_ms['p50']:.1f} ms "
                f"vs {report.results[0].latency_ms['p50']:.1f} ms)"
            )
            backend, target = TARGETS.get(profile, (None, None))
            if result.name == backend:
                line += f"; target <= {target}x: {'met' if result.ratio <= target else 'NOT met'}"
            console.print(line)


if __name__ == "__main__":
    main()
