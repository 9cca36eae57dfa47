"""Without a network, any hub access fails at once: the cache first, one short probe, then one line.

The hub is a local TCP server that counts connections and hangs up on each (as a dead network would
answer), so the tests assert how often lexiedge tried, not how long it took.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


class CountingDeadHub:
    """Accepts TCP connections on 127.0.0.1, records each request line and closes it without answering."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(2)
            try:
                self.requests.append(conn.recv(4096).decode("latin-1").split("\r\n", 1)[0])
            except OSError:
                self.requests.append("")
            conn.close()

    def model_requests(self) -> list[str]:
        """Requests for model files; huggingface_hub itself may also GET /api/agent-harnesses once a
        day (its telemetry registry, 3 s timeout, no retry; off with HF_HUB_DISABLE_TELEMETRY=1)."""
        return [line for line in self.requests if "/api/agent-harnesses" not in line]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def dead_hub():
    hub = CountingDeadHub()
    yield hub
    hub.close()


def _run(args: list[str], tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    environment.update(HF_HOME=str(tmp_path / "hf-home"), **env)  # an empty cache
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "lexiedge", *args], capture_output=True, text=True, env=environment, timeout=120
    )
    return result, time.monotonic() - start


def test_uncached_hub_base_fails_after_one_connection_in_one_line(dead_hub, tmp_path):
    result, seconds = _run(
        ["data", "stats", "--model", "qwen-lora", "--profile", "t4-16gb"], tmp_path,
        HF_ENDPOINT=f"http://127.0.0.1:{dead_hub.port}",
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "Traceback" not in result.stderr and "Retrying" not in result.stderr
    assert "Qwen/Qwen2.5-0.5B-Instruct" in line and "unreachable" in line
    assert "hf download Qwen/Qwen2.5-0.5B-Instruct" in line  # how to pre-fetch
    assert "local model directory" in line and "random:qwen2-tiny" in line and "tiny:qwen2-tutor" in line
    # one probe, no retries (huggingface_hub's backoff made 6 attempts per file, ~50 s)
    assert dead_hub.model_requests() == ["HEAD /Qwen/Qwen2.5-0.5B-Instruct/resolve/main/config.json HTTP/1.1"]
    assert len(dead_hub.requests) <= 2, dead_hub.requests
    assert seconds < 60  # generous: the import of torch alone takes seconds on a busy machine


def test_hf_hub_offline_fails_without_any_connection(dead_hub, tmp_path):
    result, _ = _run(
        ["data", "stats", "--model", "qwen-lora", "--profile", "t4-16gb"], tmp_path,
        HF_ENDPOINT=f"http://127.0.0.1:{dead_hub.port}", HF_HUB_OFFLINE="1",
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "HF_HUB_OFFLINE" in lines[0], result.stderr
    assert dead_hub.requests == []


def test_cached_files_are_used_without_the_network(monkeypatch):
    """The cache answers first: a load that succeeds locally never probes the hub."""
    from lexiedge import hub

    def no_probe(*_args, **_kwargs):
        raise AssertionError("probed the hub although the cache had it")

    monkeypatch.setattr(hub, "hub_unreachable_reason", no_probe)
    calls = []
    assert hub.load_from_hub(lambda local: calls.append(local) or "model", "org/name") == "model"
    assert calls == [True]


def test_reachable_hub_loads_online_after_the_cache_misses(monkeypatch):
    from lexiedge import hub

    monkeypatch.setattr(hub, "hub_unreachable_reason", lambda *_a, **_k: None)
    calls = []

    def load(local: bool):
        calls.append(local)
        if local:
            raise OSError("not cached")
        return "downloaded"

    assert hub.load_from_hub(load, "org/name") == "downloaded"
    assert calls == [True, False]
