"""The emotion artifact in the browser (onnxruntime-web, WASM) next to the Python runtime, on one machine.

    python bench/bench_browser.py                                   # rtx3050-4gb sizes (random weights, cached)
    python bench/bench_browser.py --artifacts A_ONNX A_INT8          # your own fp32 and int8 artifacts
    python bench/bench_browser.py --iterations 50 --rounds 5 --chromium /usr/bin/chromium

Starts `lexiedge serve` on the two artifacts, opens its demo page in headless Chromium (Playwright,
offline: onnxruntime-web comes from the server) and, in the page, loads each artifact with the
JavaScript runtime (runtime-js: manifest read, every sha256 checked) and times
``Classifier.predict`` on one seeded clip of the model's training length. The Python runtime
(``lexiedge_runtime.load(..., "cpu")``, ``Classifier.predict``) runs the same clip in this process.
Both sides use one thread (the page is not cross-origin isolated, so WASM runs single-threaded;
``--threads`` sets Python's), warm up first, and are timed in interleaved rounds. Prints the p50 of
each and the ratio browser / Python per target; writes ``browser.json`` under --out.

Without --artifacts the artifacts come from :mod:`emotion_av_artifacts` (the profile's model section
with random weights, exported by `lexiedge export`; latency does not depend on the weights), cached
under ``$LEXIEDGE_BENCH_DIR``; an artifact exported before ``preprocessing.feeds`` existed is re-exported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="rtx3050-4gb", help="profile whose emotion-av sizes to build (no --artifacts)")
    parser.add_argument("--artifacts", nargs=2, type=Path, metavar=("ONNX", "ONNX_INT8"),
                        help="fp32 and int8 artifact folders to measure instead")
    parser.add_argument("--iterations", type=int, default=30, help="timed runs per backend per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="the Python runtime's intra-op threads")
    parser.add_argument("--chromium", default=os.environ.get("LEXIEDGE_CHROMIUM") or shutil.which("chromium"),
                        help="Chromium executable (default: $LEXIEDGE_CHROMIUM, else chromium on PATH)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    if not args.chromium:
        raise SystemExit("no Chromium: apt-get install chromium, or pass --chromium PATH")
    if not (REPO / "runtime-js" / "node_modules" / "onnxruntime-web").is_dir():
        raise SystemExit("runtime-js/node_modules is absent: run `npm ci --ignore-scripts` in runtime-js")
    targets = dict(zip(("onnx", "onnx-int8"), args.artifacts)) if args.artifacts else built_artifacts(args.profile)

    from lexiedge_runtime import load
    from lexiedge_runtime.tasks.av_classification import WAVEFORM, example_feeds
    from playwright.sync_api import sync_playwright

    models = {target: load(path, "cpu", threads=args.threads) for target, path in targets.items()}
    spec = next(iter(models.values())).spec
    clip = example_feeds(np.random.default_rng(0), 1, spec.clip_samples, 1, spec.image_size)[WAVEFORM][0]
    port = free_port()
    log = args.out / "browser-serve.log"
    args.out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "lexiedge.cli", "serve", *(f"{t}={p}" for t, p in targets.items()),
               "--port", str(port), "--threads", "1", "--log-level", "warning"]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    times: dict[str, list[float]] = {f"{side} {t}": [] for side in ("browser", "python") for t in targets}
    try:
        wait_for(f"http://127.0.0.1:{port}/health", server, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("document.querySelector('#status').textContent.includes('ready')", timeout=120_000)
            page.evaluate(LOAD_JS, list(targets))
            browser_version = browser.version
            for round_index in range(args.rounds):
                for target, model in models.items():
                    measured = page.evaluate(TIME_JS, {"name": target, "clip": clip.tolist(), "rate": spec.sample_rate,
                                                       "warmup": args.warmup, "iterations": args.iterations})
                    times[f"browser {target}"] += measured
                    for _ in range(args.warmup):
                        model.predict(clip, sample_rate=spec.sample_rate)
                    for _ in range(args.iterations):
                        started = time.perf_counter()
                        model.predict(clip, sample_rate=spec.sample_rate)
                        times[f"python {target}"].append((time.perf_counter() - started) * 1000)
                print(f"round {round_index + 1}/{args.rounds} done", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50 = {name: float(np.percentile(values, 50)) for name, values in times.items()}
    p90 = {name: float(np.percentile(values, 90)) for name, values in times.items()}
    ratios = {t: p50[f"browser {t}"] / p50[f"python {t}"] for t in targets}
    import onnxruntime

    report = {
        "command": " ".join(["python", "bench/bench_browser.py", *sys.argv[1:]]),
        "artifacts": {t: str(p) for t, p in targets.items()},
        "clip": f"{spec.clip_samples} samples at {spec.sample_rate} Hz, frames masked (the page's audio path)",
        "browser": f"Chromium {browser_version} headless, onnxruntime-web {ort_web_version()} (WASM, SIMD, 1 thread)",
        "python": f"lexiedge_runtime, onnxruntime {onnxruntime.__version__} CPUExecutionProvider, {args.threads} thread(s)",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "iterations": args.iterations * args.rounds, "p50_ms": p50, "p90_ms": p90, "browser_over_python_p50": ratios,
    }
    (args.out / "browser.json").write_text(json.dumps(report, indent=1))
    print(f"\n{report['browser']}\n{report['python']}\n{report['clip']}; {report['iterations']} runs each\n")
    print("| target | browser p50 ms | Python p50 ms | browser / Python |\n|---|---|---|---|")
    for t in targets:
        print(f"| {t} | {p50[f'browser {t}']:.2f} | {p50[f'python {t}']:.2f} | {ratios[t]:.2f}x |")
    print(f"\nwrote {args.out / 'browser.json'}")


LOAD_JS = """async (names) => {
  const s = window.lexiedgeDemo;
  s.bench = {};
  for (const name of names) {
    s.bench[name] = await s.rt.loadClassifier(`/web/models/${name}`,
      { ort: s.ort, headers: s.key ? { Authorization: `Bearer ${s.key}` } : {}, sessionOptions: { executionProviders: ['wasm'] } });
  }
}"""

TIME_JS = """async ({ name, clip, rate, warmup, iterations }) => {
  const model = window.lexiedgeDemo.bench[name];
  const waveform = Float32Array.from(clip);
  for (let i = 0; i < warmup; i++) await model.predict({ waveform, sampleRate: rate });
  const times = [];
  for (let i = 0; i < iterations; i++) {
    const started = performance.now();
    await model.predict({ waveform, sampleRate: rate });
    times.push(performance.now() - started);
  }
  return times;
}"""


def built_artifacts(profile: str) -> dict[str, Path]:
    """The profile's fp32 and int8 artifacts (emotion_av_artifacts), re-exported when they predate preprocessing.feeds."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from emotion_av_artifacts import artifacts, export_in_child
    from rich.console import Console

    console = Console()
    built = artifacts(profile, console)
    for target, folder in built.items():
        manifest = json.loads((folder / "manifest.json").read_text())
        if "feeds" not in (manifest.get("preprocessing") or {}):
            run = folder.parent / folder.name.removesuffix(f"-{target}")
            export_in_child(run, target, folder, console)
    return {target: built[target] for target in ("onnx", "onnx-int8")}


def ort_web_version() -> str:
    package = REPO / "runtime-js" / "node_modules" / "onnxruntime-web" / "package.json"
    return json.loads(package.read_text())["version"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"lexiedge serve exited {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"lexiedge serve did not answer within {timeout:.0f} s")


if __name__ == "__main__":
    main()
