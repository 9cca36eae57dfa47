"""`lexiedge serve`'s command line: what it binds, when it refuses, and its one-line refusals.

These run the command in-process with uvicorn's serving loop replaced by a recorder: everything up
to it is the command's own (loading, naming, checking, binding the real socket, on port 0 so that
the system picks a free one); test_server.py and the others run the real thing. A port already in
use is tried with a real process.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

NO_KEY = "refusing to serve on {host} without an API key"


@pytest.fixture
def served(monkeypatch) -> list[dict]:
    """What the command handed to uvicorn: its config and the bound sockets (closed afterwards)."""
    import uvicorn

    calls: list[dict] = []

    def record(self, sockets=None) -> None:
        calls.append({"config": self.config, "app": self.config.app, "sockets": list(sockets or [])})
        for sock in sockets or []:
            calls[-1].setdefault("addresses", []).append(sock.getsockname()[:2])
            sock.close()

    monkeypatch.setattr(uvicorn.Server, "run", record)
    monkeypatch.delenv("LEXIEDGE_API_KEY", raising=False)
    return calls


def _one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1


def test_it_binds_loopback_and_names_models_from_their_manifests(
    cli, served, small_av_artifact, small_lm_artifact
):
    result = cli("serve", str(small_av_artifact), str(small_lm_artifact), "--port", "0")
    assert result.exit_code == 0, result.stderr
    (call,) = served
    ((host, port),) = call["addresses"]
    assert host == "127.0.0.1" and port > 0
    assert f"on http://127.0.0.1:{port} " in result.stderr  # the port the system gave, once bound
    assert sorted(call["app"].state.models) == ["emotion-av-onnx", "qwen-lora-onnx-int4"]


def test_the_default_port_is_8000():
    from lexiedge_runtime.serve.cli import parser

    assert parser().parse_args(["x"]).port == 8000 and parser().parse_args(["x"]).host == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::", "example.com"])
def test_beyond_loopback_without_a_key_it_refuses_to_start(cli, served, small_av_artifact, host):
    result = cli("serve", str(small_av_artifact), "--host", host, "--port", "0")
    assert result.exit_code == 2 and served == []
    assert _one_line(result.stderr) and NO_KEY.format(host=host) in result.stderr
    assert "--api-key" in result.stderr


def test_beyond_loopback_with_a_key_it_serves(cli, served, small_av_artifact):
    result = cli("serve", str(small_av_artifact), "--host", "0.0.0.0", "--port", "0", "--api-key", "k3y")
    assert result.exit_code == 0, result.stderr
    assert served[0]["addresses"][0][0] == "0.0.0.0" and "API key required" in result.stderr


@pytest.mark.parametrize("host", ["localhost", "::1"])
def test_every_loopback_name_needs_no_key(cli, served, small_av_artifact, host):
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    result = cli("serve", str(small_av_artifact), "--host", host, "--port", "0")
    if result.exit_code == 2 and "cannot bind" in result.stderr:
        pytest.skip(f"{host} cannot be bound on this machine: {result.stderr.strip()}")
    assert result.exit_code == 0, result.stderr
    assert all(address[0] in ("127.0.0.1", "::1") for address in served[0]["addresses"])


def test_the_key_can_come_from_the_environment(cli, served, small_av_artifact, monkeypatch):
    monkeypatch.setenv("LEXIEDGE_API_KEY", "from-env")
    result = cli("serve", str(small_av_artifact), "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 0 and "API key required" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "environment", "message"),
    [
        (["{missing}"], None, "no such artifact directory"),
        (["a={av}", "a={av}"], None, "two artifacts would be served as 'a'"),
        (["{av}", "--port", "70000"], None, "--port 70000: expected 0-65535"),
        (["{av}", "--max-body-mb", "0"], None, "--max-body-mb 0: expected a size above 0"),
        (["{av}", "--max-body-mb", "inf"], None, "--max-body-mb inf: expected a size above 0"),
        (["{av}", "--max-body-mb", "nan"], None, "--max-body-mb nan: expected a size above 0"),
        (["{av}", "--api-key", "two words"], None, "the API key (--api-key) must be printable ASCII"),
        (["{av}", "--api-key", ""], None, "the API key (--api-key) is empty"),
        (["{av}"], "", "the API key ($LEXIEDGE_API_KEY) is empty"),
        (["{av}", "--api-key", "clé-secrète"], None, "the API key (--api-key) must be printable ASCII"),
        (["{av}"], "ключ", "the API key ($LEXIEDGE_API_KEY) must be printable ASCII"),
        (["{av}", "--allow-origin", "evil.example"], None, "--allow-origin evil.example: expected"),
        (
            ["{av}", "--allow-origin", "http://ok.example/path"],
            None,
            "--allow-origin http://ok.example/path: expected",
        ),
        (["{av}", "--max-connections", "0"], None, "--max-connections 0: expected"),
        (["{av}", "--max-speakers", "0"], None, "--max-speakers 0: expected 1 to 1000000"),
        (["{av}", "--max-speakers", "10000000"], None, "--max-speakers 10000000: expected 1 to 1000000"),
        (["{av}", "--header-timeout", "0"], None, "--header-timeout 0: expected"),
        (["{av}", "--header-timeout", "inf"], None, "--header-timeout inf: expected"),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(
    cli, served, small_av_artifact, tmp_path, monkeypatch, arguments, environment, message
):
    if environment is not None:
        monkeypatch.setenv("LEXIEDGE_API_KEY", environment)
    filled = [a.format(av=small_av_artifact, missing=tmp_path / "none") for a in arguments]
    result = cli("serve", "--port", "0", *filled)  # a --port in the case comes later and wins
    assert result.exit_code == 2 and served == []
    assert _one_line(result.stderr) and message in result.stderr, result.stderr


def test_a_port_in_use_is_one_line_and_nothing_claims_to_serve(small_av_artifact):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "lexiedge.cli", "serve", str(small_av_artifact), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert _one_line(done.stderr) and "serving" not in done.stderr and "Traceback" not in done.stderr
    assert f"cannot bind 127.0.0.1:{port}" in done.stderr and "in use" in done.stderr


def test_without_the_serve_extra_it_names_it(cli, served, small_av_artifact, monkeypatch):
    monkeypatch.setitem(sys.modules, "starlette", None)  # what importlib reports for a package not installed
    result = cli("serve", str(small_av_artifact))
    assert result.exit_code == 3 and "pip install 'lexiedge-runtime[serve]'" in result.stderr


def test_serve_loads_no_plugin(cli, served, small_av_artifact, monkeypatch):
    """`lexiedge serve` never asks the plugin host (whose plugins import torch) for anything."""
    import lexiedge.plugin

    def refuse() -> None:
        raise AssertionError("lexiedge serve asked for the plugin host")

    monkeypatch.setattr(lexiedge.plugin, "get_host", refuse)
    assert cli("serve", str(small_av_artifact), "--port", "0").exit_code == 0
