"""Connections that never finish their headers (slowloris) cannot take the server's file descriptors.

A real `lexiedge serve` process with a descriptor limit of 512 (`ulimit -n 512`) gets 1,200 connections
that each send half a request and stop, from raw sockets opened by 4 threads at once (a flood from one
thread left the server enough time between accepts to hide a descriptor leak that 4 threads exposed);
/health must still answer, the server must never run out of descriptors, and it must close the half-open
connections itself (its header timeout, 10 s by default).
"""

from __future__ import annotations

import http.client
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_helpers import Server, start_server, stop, wait_until_up

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_NOFILE as on Linux")
OPEN_FILES = 512
SLOW_CLIENTS = 1200
FLOODING_THREADS = 4
CLOSED_WITHIN_S = 60  # the 10 s header timeout, with room for a busy machine


def _raise_own_file_limit(needed: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"this test needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_unfinished_headers_do_not_lock_out_health(small_av_artifact, tmp_path):
    _raise_own_file_limit(SLOW_CLIENTS + 200)
    process, port = start_server(
        [f"emotion={small_av_artifact}", "--threads", "1", "--log-level", "warning"],
        tmp_path / "server.log",
        open_files=OPEN_FILES,
    )
    server = Server("127.0.0.1", port, "", process, tmp_path / "server.log")
    slow: list[socket.socket] = []
    try:
        wait_until_up(server)

        def half_open(_: int) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the blank line
            return sock

        with ThreadPoolExecutor(FLOODING_THREADS) as flood:
            slow.extend(flood.map(half_open, range(SLOW_CLIENTS)))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        connection.request("GET", "/health")
        assert connection.getresponse().status == 200, "a new client is served while 1,200 are half-open"
        connection.close()
        deadline = time.monotonic() + CLOSED_WITHIN_S
        still_open = list(slow)
        while still_open and time.monotonic() < deadline:
            still_open = [sock for sock in still_open if not _closed_by_server(sock)]
            time.sleep(0.5)
        assert not still_open, f"{len(still_open)} half-open connections outlived the header timeout"
        assert process.poll() is None
        log = server.log.read_text()
        assert "Too many open files" not in log and "out of system resource" not in log, log[-2000:]
    finally:
        for sock in slow:
            sock.close()
        stop(process)


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        sock.recv(4096)  # b"" at the server's close (anything else would be an answer, and then a close)
    except TimeoutError:
        return False
    except OSError:  # reset: closed too
        pass
    return True
