"""Starting `lexiedge serve` as a real process, and plain-HTTP helpers (the standard library's
http.client) for what the openai client cannot send: malformed JSON, oversize bodies, uploads."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

API_KEY = "test-key-13"
MAX_BODY_MB = 8
ALLOWED_ORIGIN = "http://allowed.example:3000"  # the one other origin open_server allows
START_TIMEOUT_S = 180  # loading two artifacts on a busy 2-core machine


@dataclass
class Server:
    host: str
    port: int
    key: str
    process: subprocess.Popen
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(server: Server, method: str, path: str, body: bytes | None = None, *,
            headers: dict[str, str] | None = None, key: str | None = "default") -> Reply:
    """One HTTP request on a fresh connection; ``key=None`` sends no Authorization header."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {server.key if key == 'default' else key}"
    connection = http.client.HTTPConnection(server.host, server.port, timeout=300)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def post_json(server: Server, path: str, value: Any, **kwargs: Any) -> Reply:
    return request(server, "POST", path, json.dumps(value).encode(), headers={"Content-Type": "application/json"},
                   **kwargs)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]] | list[tuple[str, str, bytes]]
              ) -> tuple[bytes, str]:
    """A multipart/form-data body (what a browser or `curl -F` sends) and its Content-Type; ``files`` by part
    name, or (part name, file name, bytes) triples for several files in parts of one name."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    triples = [(name, *file) for name, file in files.items()] if isinstance(files, dict) else files
    for name, filename, data in triples:
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload(server: Server, filename: str, data: bytes, *, headers: dict[str, str] | None = None,
           key: str | None = "default", **fields: str) -> Reply:
    body, content_type = multipart(fields, {"file": (filename, data)})
    sent = {**(headers or {}), "Content-Type": content_type}
    return request(server, "POST", "/v1/emotion", body, headers=sent, key=key)


def start_server(arguments: list[str], log: Path, *, open_files: int | None = None,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """`lexiedge serve ARGUMENTS --port <free>` as a process of its own; ``open_files`` lowers its file
    descriptor limit (RLIMIT_NOFILE, Linux), as a small `ulimit -n` would, while it is still importing."""
    port = free_port()
    command = [sys.executable, "-m", "lexiedge.cli", "serve", *arguments, "--port", str(port)]
    # a key is given as a flag or not at all: the caller's $LEXIEDGE_API_KEY is not inherited
    inherited = {name: value for name, value in os.environ.items() if name != "LEXIEDGE_API_KEY"}
    environment = {**inherited, "OMP_NUM_THREADS": "1", **(env or {})}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment)
    if open_files is not None:
        import resource

        resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (open_files, open_files))
    return process, port


def rss_mb(process: subprocess.Popen) -> float:
    """The process's resident memory now (Linux: /proc/<pid>/status)."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"lexiedge serve exited {server.process.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            if request(server, "GET", "/health").status == 200:
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"lexiedge serve did not answer within {START_TIMEOUT_S} s:\n{server.log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
