"""`lexiedge serve` against the runtime in-process: what HTTP costs, for the emotion endpoint and for chat.

    python bench/bench_serve.py --json serve.json                   # 0.5B-shaped tutor, rtx3050-4gb emotion-av
    python bench/bench_serve.py --tiny --json /tmp/serve-tiny.json  # smoke run (tiny models)
    python bench/bench_serve.py --tutor DIR --emotion DIR           # your own artifacts

Models: the tutor has Qwen2.5-0.5B's layers (hidden 896, 24 layers, 14 heads, 2 KV heads) with random
weights and the tutor tokenizer's vocabulary (see build_tutor), int4 by GenAI's builder, block 128,
as bench_tutor_latency.py builds it (unverified, so both sides load it with allow_unverified); the classifier is
the rtx3050-4gb profile's emotion-av onnx-int8 (random weights, exported by `lexiedge export`:
emotion_av_artifacts.py). Both are built in child processes and cached (``--workdir``,
``$LEXIEDGE_BENCH_DIR``). The server is the real command (`lexiedge serve ... --threads 2`) in a
process of its own on a loopback port; the in-process side loads the same artifacts with the same
threads. Nothing else runs in either while the other is measured: the two sides alternate, request by
request (emotion) or turn by turn (chat), so the machine's load hits both alike.

* emotion: ``POST /v1/emotion`` uploads of one clip (the real RAVDESS mp4 from ../shared/data when
  present, else a synthetic mp4) one at a time: latency p50/p99 and requests/s, against
  ``Classifier.predict_file`` on the same file; then 4 clients at once (requests/s). The server's own
  ``timing`` (decode vs inference) is reported too.
* chat: streamed completions through the official openai client (what an app pays: HTTP, SSE and the
  client's parsing) against ``TextGenerator.generate(stream=True)``: a system prompt and one user turn
  (a different one each round, the same sequence for both sides; the system prompt is reused from the
  kept KV cache by both), greedy, ``--new-tokens`` tokens. Time to first token (from the call to the
  first text) and decode tokens/s (tokens after the first over the time after the first text).

Target: chat time to first token through the server <= 1.15x in-process at p50. JSON (``--json``):
every sample, the summaries, the ratios, the machine and versions. The full run takes about 2 minutes
on 2 cores once the emotion artifact is cached. ``--tiny``'s chat ratios mean nothing against the
target: its tutor reaches the first token in about a millisecond, so they show HTTP's fixed cost alone
(the difference of the two p50s).

``--load`` measures something else, on one server (no key, loopback, as a user starts it): 50
streaming chat clients (the openai client) and 20 decompression-bomb uploads at once (a 0.43 MB FLAC
of 40 minutes of 48 kHz stereo silence, the same FLAC with a header claiming one second, an mp4 of
8192x8192 frames; written by tests/serve/media_bombs.py), while /health is polled every 0.25 s and the
server's resident memory is sampled every 50 ms. It reports whether every chat was served (or
refused with 503) and every bomb refused with 413, whether /health answered every poll, and the
server's memory: before, the sampled peak, the kernel's high-water mark, after; the check is
``peak - before <= LOAD_RSS_BOUND_MB``. Memory and correctness hold under other load; the /health
latencies printed are wall-clock under whatever else runs, and labelled so.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

import bench_tutor_latency as tutor_bench
import emotion_av_artifacts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))  # the bomb files' writers
import media_bombs

THREADS = 2
TARGET_TTFT_RATIO = 1.15
SYSTEM = {"role": "system", "content": tutor_bench.SYSTEM_PROMPT}
USERS = [text for text, _ in tutor_bench.TURNS]
SHARED_DATA = Path(os.environ.get("LEXIEDGE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
REAL_CLIP = SHARED_DATA / "ravdess-av" / "Actor_01" / "01-01-01-01-01-01-01.mp4"
LOAD_CLIENTS, LOAD_BOMBS = 50, 20
LOAD_RSS_BOUND_MB = 256  # the server's peak over its resident memory before the load
HEALTH_EVERY_S, RSS_EVERY_S = 0.25, 0.05


# --- the server -------------------------------------------------------------------------------------


def start_server(tutor: Path, emotion: Path, log: Path) -> tuple[subprocess.Popen, int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "lexiedge.cli", "serve", f"tutor={tutor}", f"emotion={emotion}", "--port",
               str(port), "--threads", str(THREADS), "--allow-unverified", "--log-level", "warning"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    for _ in range(1200):
        if process.poll() is not None:
            raise SystemExit(f"lexiedge serve exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if _get(port, "/health")[0] == 200:
                return process, port
        except OSError:
            time.sleep(0.25)
    raise SystemExit("lexiedge serve did not start within 5 minutes")


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _upload_request(clip: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nemotion\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{clip.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _upload_status(port: int, name: str, data: bytes) -> tuple[int, dict[str, Any]]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n")
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("POST", "/v1/emotion", body=body,
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def upload(port: int, body: bytes, content_type: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("POST", "/v1/emotion", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            raise SystemExit(f"POST /v1/emotion: {response.status} {answer}")
        return answer
    finally:
        connection.close()


# --- emotion ----------------------------------------------------------------------------------------


def measure_emotion(port: int, artifact: Path, clip: Path, requests: int) -> dict[str, Any]:
    from lexiedge_runtime import load

    local = load(artifact, "cpu", threads=THREADS)
    body, content_type = _upload_request(clip)
    for _ in range(3):  # warm both: first decodes load codecs and the face cascade
        upload(port, body, content_type)
        local.predict_file(clip)
    served, in_process, timings = [], [], []
    for _ in range(requests):  # alternating, one request at a time
        started = time.perf_counter()
        timings.append(upload(port, body, content_type)["timing"])
        served.append(time.perf_counter() - started)
        started = time.perf_counter()
        local.predict_file(clip)
        in_process.append(time.perf_counter() - started)
    concurrent = _concurrent_uploads(port, body, content_type, clients=4, each=max(2, requests // 4))
    return {
        "clip": str(clip), "clip_bytes": clip.stat().st_size,
        "server": _latency(served), "in_process": _latency(in_process),
        "server_over_in_process_p50": _p(served, 50) / _p(in_process, 50),
        "server_timing_ms_p50": {key: statistics.median(t[key] for t in timings) for key in ("decode_ms", "inference_ms")},
        "concurrent_4_clients_requests_per_s": concurrent,
        "samples_s": {"server": served, "in_process": in_process},
    }


def _concurrent_uploads(port: int, body: bytes, content_type: str, *, clients: int, each: int) -> float:
    def client() -> None:
        for _ in range(each):
            upload(port, body, content_type)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clients * each / (time.perf_counter() - started)


# --- chat -------------------------------------------------------------------------------------------


def measure_chat(port: int, artifact: Path, rounds: int, new_tokens: int) -> dict[str, Any]:
    from openai import OpenAI

    from lexiedge_runtime import UnverifiedArtifactWarning, load

    with warnings.catch_warnings():  # random weights: unverified, and said so in the module doc
        warnings.simplefilter("ignore", UnverifiedArtifactWarning)
        local = load(artifact, "cpu", threads=THREADS, allow_unverified=True)
    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=600)
    sides = {"server": lambda messages: _served_turn(client, messages, new_tokens),
             "in_process": lambda messages: _local_turn(local, messages, new_tokens)}
    for side in sides.values():  # warm: the system prompt goes into each side's kept cache
        side([SYSTEM, {"role": "user", "content": "Hello!"}])
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for turn in range(rounds):
        messages = [SYSTEM, {"role": "user", "content": USERS[turn % len(USERS)]}]
        order = list(sides) if turn % 2 == 0 else list(reversed(sides))
        for name in order:
            samples[name].append(sides[name](messages))
    summary = {name: {"ttft_s": _latency([s["ttft_s"] for s in runs]),
                      "decode_tok_s_p50": _p([s["decode_tok_s"] for s in runs], 50),
                      "prompt_tokens_p50": _p([s["prompt_tokens"] for s in runs], 50)}
               for name, runs in samples.items()}
    ratio = summary["server"]["ttft_s"]["p50"] / summary["in_process"]["ttft_s"]["p50"]
    return {**summary, "ttft_server_over_in_process_p50": ratio,
            "decode_server_over_in_process_p50": summary["server"]["decode_tok_s_p50"]
            / summary["in_process"]["decode_tok_s_p50"],
            "target_ttft_ratio": TARGET_TTFT_RATIO, "target_met": ratio <= TARGET_TTFT_RATIO,
            "new_tokens": new_tokens, "samples": samples}


def _served_turn(client: Any, messages: list[dict[str, str]], new_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    first = last = None
    usage = None
    for chunk in client.chat.completions.create(model="tutor", messages=messages, max_tokens=new_tokens,
                                                temperature=0, stream=True, stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            first = first or last
        if chunk.usage is not None:
            usage = chunk.usage
    assert first is not None and last is not None and usage is not None
    return _turn(started, first, last, usage.completion_tokens, usage.prompt_tokens)


def _local_turn(model: Any, messages: list[dict[str, str]], new_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    first = last = None
    stream = model.generate(messages, max_new_tokens=new_tokens, temperature=0, stream=True)
    for piece in stream:
        if piece:
            last = time.perf_counter()
            first = first or last
    assert first is not None and last is not None
    return _turn(started, first, last, stream.completion_tokens, stream.prompt_tokens)


def _turn(started: float, first: float, last: float, tokens: int, prompt_tokens: int) -> dict[str, float]:
    return {"ttft_s": first - started, "decode_tok_s": (tokens - 1) / max(last - first, 1e-9),
            "tokens": tokens, "prompt_tokens": prompt_tokens}


# --- load: streams and bombs at once -----------------------------------------------------------------


def bomb_files(folder: Path) -> list[tuple[str, bytes]]:
    """LOAD_BOMBS uploads, the three kinds in turn (the issue's files: a few seconds to write)."""
    honest = media_bombs.silent_flac(folder / "silence.flac", 2400, rate=48000, channels=2)
    liar = media_bombs.lie_about_length(honest, folder / "liar.flac", 48000)
    huge = media_bombs.video(folder / "huge.mp4", width=8192, height=8192, frames=4, fps=1)
    kinds = [(path.name, path.read_bytes()) for path in (honest, liar, huge)]
    return [kinds[index % len(kinds)] for index in range(LOAD_BOMBS)]


def _memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


class _Watch(threading.Thread):
    """Calls ``probe`` every ``every`` seconds until stopped; keeps what it returns."""

    def __init__(self, probe: Any, every: float) -> None:
        super().__init__(daemon=True)
        self.probe, self.every, self.samples = probe, every, []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append(self.probe())
            self.stopped.wait(self.every)


def _health(port: int) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        status = _get(port, "/health")[0]
    except OSError as exc:
        status = f"{type(exc).__name__}"
    return {"at": time.time(), "status": status, "seconds": time.perf_counter() - started}


async def _stream_chat(client: Any, index: int, new_tokens: int) -> dict[str, Any]:
    import openai

    try:
        pieces, finish = 0, None
        stream = await client.chat.completions.create(
            model="tutor", max_tokens=new_tokens, temperature=0, stream=True,
            messages=[SYSTEM, {"role": "user", "content": USERS[index % len(USERS)]}])
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces += 1
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        return {"outcome": "served" if finish else "cut", "pieces": pieces, "finish_reason": finish}
    except openai.APIStatusError as exc:
        return {"outcome": "refused" if exc.status_code == 503 else "error", "status": exc.status_code}
    except Exception as exc:
        return {"outcome": "error", "error": f"{type(exc).__name__}: {exc}"[:200]}


def measure_load(port: int, pid: int, clip: Path, new_tokens: int, work: Path) -> dict[str, Any]:
    """LOAD_CLIENTS streaming chats and LOAD_BOMBS bomb uploads at once; /health and memory watched."""
    import asyncio

    from openai import AsyncOpenAI

    bombs = bomb_files(work)
    body, content_type = _upload_request(clip)
    upload(port, body, content_type)  # warm: codecs, the face cascade, the tutor's first turn
    asyncio.run(_warm_chat(port, new_tokens))
    before = _memory_mb(pid)
    health = _Watch(lambda: _health(port), HEALTH_EVERY_S)
    memory = _Watch(lambda: _memory_mb(pid)["VmRSS"], RSS_EVERY_S)
    health.start()
    memory.start()

    async def everything() -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]:
        async with AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0,
                               timeout=1800) as client:
            chats = [_stream_chat(client, index, new_tokens) for index in range(LOAD_CLIENTS)]
            uploads = [asyncio.to_thread(_upload_status, port, name, data) for name, data in bombs]
            results = await asyncio.gather(*chats, *uploads)
        return list(results[:LOAD_CLIENTS]), list(results[LOAD_CLIENTS:])

    started = time.perf_counter()
    chats, refusals = asyncio.run(everything())
    elapsed = time.perf_counter() - started
    time.sleep(1.0)  # a last /health poll and memory sample after the load
    health.stopped.set()
    memory.stopped.set()
    health.join()
    memory.join()
    after = _memory_mb(pid)
    # the high-water mark counts too when the load raised it (a spike between two samples)
    peak = max([before["VmRSS"], *memory.samples, after["VmHWM"] if after["VmHWM"] > before["VmHWM"] else 0])
    polls = health.samples
    failed_polls = [p for p in polls if p["status"] != 200]
    bomb_statuses = Counter(status for status, _ in refusals)
    outcomes = Counter(chat["outcome"] for chat in chats)
    return {
        "clients": LOAD_CLIENTS, "bombs": LOAD_BOMBS, "bomb_kinds": sorted({name for name, _ in bombs}),
        "bomb_bytes": {name: len(data) for name, data in dict(bombs).items()},
        "seconds_under_load": elapsed,
        "chat_outcomes": dict(outcomes), "chats": chats,
        "bomb_statuses": {str(k): v for k, v in bomb_statuses.items()},
        "bomb_messages": sorted({answer["error"]["message"] for _, answer in refusals if "error" in answer}),
        "health": {"polls": len(polls), "failed": len(failed_polls), "failures": failed_polls[:10],
                   "max_seconds_under_load": max((p["seconds"] for p in polls), default=None)},
        "rss_mb": {"before": before["VmRSS"], "peak": peak, "after": after["VmRSS"],
                   "high_water_before": before["VmHWM"], "high_water_after": after["VmHWM"],
                   "bound_over_before": LOAD_RSS_BOUND_MB},
        "all_served_or_refused": outcomes.get("served", 0) + outcomes.get("refused", 0) == LOAD_CLIENTS
                                 and bomb_statuses.get(413, 0) == LOAD_BOMBS,
        "health_answered_throughout": not failed_polls and len(polls) > 0,
        "rss_within_bound": peak - before["VmRSS"] <= LOAD_RSS_BOUND_MB,
    }


async def _warm_chat(port: int, new_tokens: int) -> None:
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0,
                           timeout=600) as client:
        await _stream_chat(client, 0, new_tokens)


def print_load(load: dict[str, Any]) -> None:
    rss = load["rss_mb"]
    print(f"load: {load['clients']} streaming chats and {load['bombs']} bomb uploads at once "
          f"({', '.join(load['bomb_kinds'])}), {load['seconds_under_load']:.1f} s")
    print(f"  chats: {load['chat_outcomes']}; bombs: {load['bomb_statuses']} (HTTP status: count)")
    print(f"  /health: {load['health']['polls']} polls, {load['health']['failed']} failed; slowest "
          f"{load['health']['max_seconds_under_load']:.2f} s (wall clock under this machine's load)")
    print(f"  server RSS: {rss['before']:.0f} MB before, peak {rss['peak']:.0f} MB, "
          f"{rss['after']:.0f} MB after; high-water mark {rss['high_water_before']:.0f} -> "
          f"{rss['high_water_after']:.0f} MB; bound: peak <= before + {rss['bound_over_before']} MB")
    verdicts = {"all served or refused": load["all_served_or_refused"],
                "/health answered throughout": load["health_answered_throughout"],
                "RSS within bound": load["rss_within_bound"]}
    print("  " + "; ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in verdicts.items()))


# --- report -----------------------------------------------------------------------------------------


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def _latency(values: list[float]) -> dict[str, float]:
    return {"p50": _p(values, 50), "p99": _p(values, 99), "mean": statistics.fmean(values),
            "requests_per_s": len(values) / sum(values), "n": len(values)}


def machine() -> dict[str, Any]:
    return {**tutor_bench.machine(), "load_average_1m": os.getloadavg()[0]}


def versions() -> dict[str, str]:
    """The runtimes', and the server's and client's on either side of the HTTP (what the ratios depend on)."""
    from importlib.metadata import version

    return {**tutor_bench.versions(), **{name: version(name) for name in ("openai", "starlette", "uvicorn")}}


def print_report(report: dict[str, Any]) -> None:
    emotion, chat = report["emotion"], report["chat"]
    ms = lambda seconds: f"{seconds * 1000:.1f} ms"  # noqa: E731
    print(f"emotion ({Path(emotion['clip']).name}, {emotion['clip_bytes'] / 1e6:.1f} MB upload):")
    for side in ("server", "in_process"):
        lat = emotion[side]
        print(f"  {side:10s} p50 {ms(lat['p50'])}  p99 {ms(lat['p99'])}  {lat['requests_per_s']:.2f} req/s")
    print(f"  server / in-process at p50: {emotion['server_over_in_process_p50']:.3f}x; server timing p50: "
          f"decode {emotion['server_timing_ms_p50']['decode_ms']:.1f} ms, inference "
          f"{emotion['server_timing_ms_p50']['inference_ms']:.1f} ms; 4 clients: "
          f"{emotion['concurrent_4_clients_requests_per_s']:.2f} req/s")
    print(f"chat ({chat['new_tokens']} greedy tokens, {len(chat['samples']['server'])} turns):")
    for side in ("server", "in_process"):
        print(f"  {side:10s} TTFT p50 {ms(chat[side]['ttft_s']['p50'])}  p99 {ms(chat[side]['ttft_s']['p99'])}  "
              f"decode {chat[side]['decode_tok_s_p50']:.1f} tok/s")
    print(f"  TTFT server / in-process at p50: {chat['ttft_server_over_in_process_p50']:.3f}x "
          f"(target <= {TARGET_TTFT_RATIO}: {'met' if chat['target_met'] else 'not met'}); decode "
          f"{chat['decode_server_over_in_process_p50']:.3f}x")


def tutor_paths(work: Path, tiny: bool) -> tuple[Path, Path]:
    name = "tiny" if tiny else "0.5b-layers"
    return work / f"hf-{name}", work / f"onnx-int4-{name}"


def build_tutor(work: Path, tiny: bool) -> None:
    """The random tutor and its int4 artifact (in a child process: torch and the builder stay out of the
    measuring one). The 0.5B shape's layers with the tutor tokenizer's vocabulary as the model's: random
    weights over Qwen's 151936 ids pick ids the tokenizer does not have, which decode to no text, and a
    stream of no text has no first token to time. The smaller LM head makes each token a little cheaper,
    so the server's share of the time, and the ratio, come out a little larger: the safe side."""
    from lexiedge_qwen_lora.tiny import build_tiny_qwen2

    hf, artifact = tutor_paths(work, tiny)
    if not (hf / "config.json").exists():
        build_tiny_qwen2(hf, **{**(tutor_bench.TINY if tiny else tutor_bench.QWEN2_5_0_5B), "vocab_size": None})
    if not (artifact / "manifest.json").exists():
        options = tutor_bench.TINY_ARTIFACT_OPTIONS if tiny else tutor_bench.ARTIFACT_OPTIONS
        tutor_bench.build_artifact(hf, artifact, work / "genai-cache", tutor_bench.Variant("main", dict(options)))


def build(work: Path, tiny: bool) -> tuple[Path, Path]:
    """The two artifacts (built in child processes, cached): tutor int4 and emotion-av onnx-int8."""
    child = multiprocessing.get_context("spawn").Process(target=build_tutor, args=(work, tiny))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"building the tutor artifact failed (exit code {child.exitcode})")
    emotion = emotion_av_artifacts.artifacts("cpu" if tiny else "rtx3050-4gb")["onnx-int8"]
    return tutor_paths(work, tiny)[1], emotion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--tiny", action="store_true", help="tiny models (smoke run), not the 0.5B shape")
    parser.add_argument("--tutor", type=Path, help="a causal-lm artifact instead of the built one")
    parser.add_argument("--emotion", type=Path, help="an av-classification artifact instead of the built one")
    parser.add_argument("--workdir", type=Path, help="keep the built tutor here (default: a temporary folder)")
    parser.add_argument("--requests", type=int, default=40, help="emotion uploads per side")
    parser.add_argument("--rounds", type=int, default=12, help="chat turns per side")
    parser.add_argument("--new-tokens", type=int, default=48, help="greedy tokens per chat turn")
    parser.add_argument("--load", action="store_true",
                        help="instead: 50 streaming chats and 20 bomb uploads at once (memory, /health, "
                             "refusals)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lexiedge-serve-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        tutor, emotion = (args.tutor, args.emotion) if args.tutor and args.emotion else build(work, args.tiny)
        clip = REAL_CLIP if REAL_CLIP.is_file() else next(
            (emotion_av_artifacts.bench_dir() / "emotion-av").glob("synth-av-*/Actor_01/*.mp4"))
        process, port = start_server(tutor, emotion, Path(tmp) / "server.log")
        try:
            report = {"machine": machine(), "versions": versions(), "threads": THREADS,
                      "tutor": str(tutor), "emotion_artifact": str(emotion)}
            if args.load:
                report["load"] = measure_load(port, process.pid, clip, args.new_tokens, Path(tmp))
            else:
                report["emotion"] = measure_emotion(port, emotion, clip, args.requests)
                report["chat"] = measure_chat(port, tutor, args.rounds, args.new_tokens)
        finally:
            process.terminate()
            process.wait(timeout=30)
    report["machine"]["load_average_1m_at_end"] = os.getloadavg()[0]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    if args.load:
        print_load(report["load"])
    else:
        print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
