"""Without a key (the default) the server answers this machine's own clients and no web page elsewhere.

A browser sends a text/plain or multipart POST to any address without asking first (no CORS
preflight), and a page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) reaches a local
server under the attacker's name. So, as Ollama and llama.cpp's server do: a request from another
origin is refused unless `--allow-origin` names it, a loopback server answers only to the names of
this machine in `Host`, and the JSON endpoints take JSON only. Against ``open_server`` (no key,
`--allow-origin http://allowed.example:3000`), a real process, with plain HTTP where a browser's
headers must be sent exactly.
"""

from __future__ import annotations

import json

import pytest
from serve_helpers import ALLOWED_ORIGIN, Server, request, upload

CHAT = "/v1/chat/completions"
EVIL = "http://evil.example"
TINY_CHAT = {
    "model": "tutor",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 2,
    "temperature": 0,
}


def _chat(server: Server, headers: dict[str, str]):
    return request(server, "POST", CHAT, json.dumps(TINY_CHAT).encode(), headers=headers, key=None)


def _one_line_error(reply) -> str:
    message = reply.json()["error"]["message"]
    assert message and "\n" not in message
    return message


def test_a_page_elsewhere_cannot_post_to_the_server(open_server):
    as_text = _chat(open_server, {"Content-Type": "text/plain", "Origin": EVIL})  # no preflight in a browser
    assert as_text.status == 403, as_text.body
    message = _one_line_error(as_text)
    assert EVIL in message and "--allow-origin" in message
    assert "access-control-allow-origin" not in as_text.headers
    as_json = _chat(open_server, {"Content-Type": "application/json", "Origin": EVIL})
    assert as_json.status == 403
    form = upload(open_server, "clip.wav", b"RIFF....WAVE", headers={"Origin": EVIL}, key=None)
    assert form.status == 403, form.body
    sandboxed = _chat(open_server, {"Content-Type": "application/json", "Origin": "null"})  # file://, sandbox
    assert sandboxed.status == 403
    preflight = request(
        open_server,
        "OPTIONS",
        CHAT,
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        key=None,
    )
    assert preflight.status == 403 and "access-control-allow-origin" not in preflight.headers
    same_port_elsewhere = _chat(
        open_server, {"Content-Type": "application/json", "Origin": f"http://evil.example:{open_server.port}"}
    )
    assert same_port_elsewhere.status == 403


def test_an_allowed_origin_gets_cors_answers(open_server):
    preflight = request(
        open_server,
        "OPTIONS",
        CHAT,
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
        key=None,
    )
    assert preflight.status == 200, preflight.body
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    reply = _chat(open_server, {"Content-Type": "application/json", "Origin": ALLOWED_ORIGIN})
    assert reply.status == 200, reply.body
    assert reply.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_the_servers_own_page_is_same_origin(open_server):
    port = open_server.port
    for name in ("127.0.0.1", "localhost"):
        origin = f"http://{name}:{port}"
        reply = _chat(
            open_server, {"Content-Type": "application/json", "Origin": origin, "Host": f"{name}:{port}"}
        )
        assert reply.status == 200, (name, reply.body)
    page = request(open_server, "GET", "/", headers={"Host": f"localhost:{port}"}, key=None)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    cross = _chat(
        open_server,
        {
            "Content-Type": "application/json",
            "Origin": f"http://localhost:{port}",
            "Host": f"127.0.0.1:{port}",
        },
    )  # another origin in a browser's eyes
    assert cross.status == 403


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",
        "attacker.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "localhost.attacker.example:{port}",
        "localhost:{other}",
        "[::2]:{port}",
    ],
)
def test_a_loopback_server_refuses_other_host_names(open_server, host):
    """DNS rebinding: the page's own name arrives in Host; only this machine's names are answered."""
    named = host.format(port=open_server.port, other=open_server.port + 1)
    for method, path in (("GET", "/v1/models"), ("GET", "/"), ("GET", "/health")):
        reply = request(open_server, method, path, headers={"Host": named}, key=None)
        assert reply.status == 403, (named, path, reply.body)
        assert named.split(":")[0] in _one_line_error(reply)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "[::1]:{port}", "localhost", "127.0.0.1"],
)
def test_a_loopback_server_answers_its_own_names(open_server, host):
    reply = request(
        open_server, "GET", "/v1/models", headers={"Host": host.format(port=open_server.port)}, key=None
    )
    assert reply.status == 200, reply.body


def test_json_endpoints_take_json_only(open_server):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        reply = _chat(open_server, headers)
        assert reply.status == 415, (content_type, reply.body)
        assert "application/json" in _one_line_error(reply)
    assert _chat(open_server, {"Content-Type": "application/json; charset=utf-8"}).status == 200
    samples = request(
        open_server,
        "POST",
        "/v1/emotion",
        json.dumps({"samples": [0.0] * 16000}).encode(),
        headers={"Content-Type": "text/plain"},
        key=None,
    )
    assert samples.status == 415


def test_the_openai_client_works_without_a_key(open_server):
    from openai import OpenAI

    with OpenAI(base_url=open_server.base_url, api_key="unused", max_retries=0, timeout=300) as client:
        assert {model.id for model in client.models.list()} == {"tutor", "emotion"}
        reply = client.chat.completions.create(
            model="tutor", messages=TINY_CHAT["messages"], max_tokens=2, temperature=0
        )
        assert reply.choices[0].message.role == "assistant"
