"""How robustly the cpu profile learns the synthetic emotions: seeds x threads, with the test floors' margins.

    python bench/bench_learning_sweep.py                        # seeds 0 1 2, threads 1 and 2
    python bench/bench_learning_sweep.py --seeds 0 1 2 3 4 --json sweep.json

A different CPU sums floats in a different order, and a tiny model trained for a few minutes ends
somewhere else; the suite's learning assertions must hold wherever it runs. Changing the seed
(initialisation, batch order, augmentation draws) and the number of threads (the reduction order
of every matmul and convolution: the same kind of perturbation another CPU causes) shows how far
the score moves. Each cell is `lexiedge train --profile cpu --model emotion-av` on the suite's
synthetic set (`lexiedge data synth-av`, the actors and clips the tests use), in a fresh process;
printed and written: the test split's UAR and WAR per cell, and the smallest margin over the floor
the tests assert (tests/pipeline/test_emotion_av_cpu_profile.py and the demo).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lexiedge.rundir import read_test_metrics

CHANCE = 1 / 8
TEST_FLOOR_UAR = 3 * CHANCE  # what the learning tests assert on the held-out actor (tests/pipeline, tests/runtime)


def lexiedge(*args: str, threads: int | None = None) -> None:
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-m", "lexiedge.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lexiedge {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--actors", type=int, default=6, help="synthetic actors (the tests use 6)")
    parser.add_argument("--clips-per-emotion", type=int, default=4, help="clips per actor and emotion (the tests' 4)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more profile overrides")
    parser.add_argument("--json", type=Path, help="write the cells and the summary here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-learning-sweep-"))
    data = root / "synth"
    lexiedge("data", "synth-av", "--out", str(data), "--actors", str(args.actors),
             "--clips-per-emotion", str(args.clips_per_emotion))
    cells = []
    for seed in args.seeds:
        for threads in args.threads:
            run = root / f"run-seed{seed}-threads{threads}"
            sets = [f"models.emotion-av.train.seed={seed}", *args.set]
            started = time.perf_counter()
            lexiedge("train", "--profile", "cpu", "--model", "emotion-av", "--data", str(data), "--out", str(run),
                     *[item for value in sets for item in ("--set", value)], threads=threads)
            test = read_test_metrics(run)
            cell = {"seed": seed, "threads": threads, "test_uar": test["uar"], "test_war": test["war"],
                    "test_clips": test["samples"], "wall_s": time.perf_counter() - started}
            cells.append(cell)
            print(f"seed {seed} threads {threads}: test UAR {cell['test_uar']:.3f} WAR {cell['test_war']:.3f} "
                  f"on {cell['test_clips']} clips ({cell['wall_s']:.0f} s)", flush=True)
    worst = min(cell["test_uar"] for cell in cells)
    summary = {
        "cells": cells,
        "chance": CHANCE,
        "test_floor_uar": TEST_FLOOR_UAR,
        "min_test_uar": worst,
        "mean_test_uar": sum(cell["test_uar"] for cell in cells) / len(cells),
        "smallest_margin_over_floor": worst - TEST_FLOOR_UAR,
        "data": {"actors": args.actors, "clips_per_emotion": args.clips_per_emotion},
        "overrides": args.set,
    }
    print(f"worst test UAR {worst:.3f} (floor {TEST_FLOOR_UAR}, margin {worst - TEST_FLOOR_UAR:+.3f}); "
          f"mean {summary['mean_test_uar']:.3f}; chance {CHANCE}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
