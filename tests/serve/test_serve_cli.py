"""`lexiedge serve`'s command line: what it binds, when it warns, and its one-line refusals.

These run the command in-process with uvicorn's ``run`` replaced by a recorder: everything before
the socket opens is the command's own (loading, naming, checking); test_server.py runs the real thing.
"""

from __future__ import annotations

import sys

import pytest

WARNING = "without an API key: anyone who can reach this machine can use the models"


@pytest.fixture
def uvicorn_runs(monkeypatch) -> list[dict]:
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append({"app": app, **options}))
    monkeypatch.delenv("LEXIEDGE_API_KEY", raising=False)
    return calls


def test_it_binds_loopback_by_default_and_names_models_from_their_manifests(cli, uvicorn_runs, small_av_artifact,
                                                                            small_lm_artifact):
    result = cli("serve", str(small_av_artifact), str(small_lm_artifact))
    assert result.exit_code == 0, result.stderr
    (call,) = uvicorn_runs
    assert (call["host"], call["port"]) == ("127.0.0.1", 8000)
    assert sorted(call["app"].state.models) == ["emotion-av-onnx", "qwen-lora-onnx-int4"]
    assert WARNING not in result.stderr


@pytest.mark.parametrize(("host", "key", "warned"), [
    ("0.0.0.0", None, True), ("192.0.2.7", None, True), ("0.0.0.0", "k3y", False), ("::1", None, False),
    ("localhost", None, False),
])
def test_binding_beyond_loopback_without_a_key_warns(cli, uvicorn_runs, small_av_artifact, host, key, warned):
    result = cli("serve", str(small_av_artifact), "--host", host, *(["--api-key", key] if key else []))
    assert result.exit_code == 0, result.stderr
    assert (WARNING in result.stderr) is warned
    assert uvicorn_runs[0]["host"] == host


def test_the_key_can_come_from_the_environment(cli, uvicorn_runs, small_av_artifact, monkeypatch):
    monkeypatch.setenv("LEXIEDGE_API_KEY", "from-env")
    result = cli("serve", str(small_av_artifact), "--host", "0.0.0.0")
    assert result.exit_code == 0 and WARNING not in result.stderr and "API key required" in result.stderr


@pytest.mark.parametrize(("arguments", "message"), [
    (["{missing}"], "no such artifact directory"),
    (["a={av}", "a={av}"], "two artifacts would be served as 'a'"),
    (["{av}", "--port", "70000"], "--port 70000: expected 0-65535"),
    (["{av}", "--max-body-mb", "0"], "--max-body-mb 0: expected a size above 0"),
    (["{av}", "--api-key", "two words"], "the API key must be a non-empty word without spaces"),
])
def test_a_bad_command_line_is_one_line_and_exit_2(cli, uvicorn_runs, small_av_artifact, tmp_path, arguments, message):
    filled = [a.format(av=small_av_artifact, missing=tmp_path / "none") for a in arguments]
    result = cli("serve", *filled)
    assert result.exit_code == 2 and uvicorn_runs == []
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and message in result.stderr


def test_without_the_serve_extra_it_names_it(cli, uvicorn_runs, small_av_artifact, monkeypatch):
    monkeypatch.setitem(sys.modules, "starlette", None)  # what importlib reports for a package not installed
    result = cli("serve", str(small_av_artifact))
    assert result.exit_code == 3 and "pip install 'lexiedge-runtime[serve]'" in result.stderr


def test_serve_loads_no_plugin(cli, uvicorn_runs, small_av_artifact, monkeypatch):
    """`lexiedge serve` never asks the plugin host (whose plugins import torch) for anything."""
    import lexiedge.plugin

    def refuse() -> None:
        raise AssertionError("lexiedge serve asked for the plugin host")

    monkeypatch.setattr(lexiedge.plugin, "get_host", refuse)
    assert cli("serve", str(small_av_artifact)).exit_code == 0
