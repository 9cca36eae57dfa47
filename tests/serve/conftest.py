"""Real `lexiedge serve` processes over the suite's small artifacts (tests/conftest.py builds them).

Each server runs as the command a user types (a separate process, uvicorn on a free loopback port).
``server`` has an API key and an 8 MiB body limit; ``open_server`` has no key (the default a user
starts with) and allows one other origin. The tests talk to them with the official `openai` client
and, for what that client cannot send, with plain HTTP (serve_helpers.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # serve_helpers

from serve_helpers import (
    ALLOWED_ORIGIN,
    API_KEY,
    MAX_BODY_MB,
    Server,
    start_server,
    stop,
    wait_until_up,
)


@pytest.fixture(scope="session")
def server(small_av_artifact: Path, small_lm_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`lexiedge serve tutor=<onnx-int4> emotion=<onnx> --api-key ... --max-body-mb 8`, up and answering."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    process, port = start_server(
        [f"tutor={small_lm_artifact}", f"emotion={small_av_artifact}", "--api-key", API_KEY,
         "--max-body-mb", str(MAX_BODY_MB), "--threads", "1", "--log-level", "warning"], log)
    running = Server("127.0.0.1", port, API_KEY, process, log)
    try:
        wait_until_up(running)
        yield running
    finally:
        stop(process)


@pytest.fixture(scope="session")
def open_server(small_av_artifact: Path, small_lm_artifact: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`lexiedge serve tutor=... emotion=... --allow-origin http://allowed.example:3000`: no key, loopback."""
    log = tmp_path_factory.mktemp("serve-open") / "server.log"
    process, port = start_server(
        [f"tutor={small_lm_artifact}", f"emotion={small_av_artifact}", "--allow-origin", ALLOWED_ORIGIN,
         "--threads", "1", "--log-level", "warning"], log)
    running = Server("127.0.0.1", port, "", process, log)
    try:
        wait_until_up(running)
        yield running
    finally:
        stop(process)


@pytest.fixture
def client(server: Server):
    from openai import OpenAI

    with OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0, timeout=300) as openai_client:
        yield openai_client
