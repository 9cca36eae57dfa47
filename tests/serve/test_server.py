"""`lexiedge serve` as a client sees it: the official openai client and plain HTTP against a real server.

Answers are compared with what the same artifacts give through `lexiedge infer` and the runtime
in-process: the server must add transport, never change a token or a probability.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket
import sys
import time
from pathlib import Path

import numpy as np
import openai
import pytest
from serve_helpers import MAX_BODY_MB, Server, post_json, request, upload

from lexiedge_runtime import load

PROMPT = "Correct: She go to school yesterday."
REAL_MP4 = Path("ravdess-av/Actor_01/01-01-01-01-01-01-01.mp4")
REAL_WAV = Path("ravdess-speech/Actor_01/03-01-02-01-01-02-01.wav")  # 48 kHz stereo


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def tutor(small_lm_artifact):
    """The tutor artifact in this process: what the server's answers must equal."""
    return load(small_lm_artifact, "cpu", threads=1)


@pytest.fixture(scope="module")
def emotion(small_av_artifact):
    return load(small_av_artifact, "cpu", threads=1)


# --- chat --------------------------------------------------------------------------------------------


def test_the_models_are_listed(client):
    listed = {model.id: model for model in client.models.list()}
    assert set(listed) == {"tutor", "emotion"}
    assert listed["tutor"].owned_by == "lexiedge" and listed["tutor"].task == "causal-lm"


def test_a_greedy_chat_completion_gives_the_tokens_of_lexiedge_infer(client, cli, small_lm_artifact, tutor):
    reply = client.chat.completions.create(model="tutor", messages=_user(PROMPT), max_tokens=16, temperature=0)
    infer = cli("infer", str(small_lm_artifact), "--prompt", PROMPT, "--max-new-tokens", "16")
    assert infer.exit_code == 0, infer.stderr
    assert reply.choices[0].message.content + "\n" == infer.stdout
    expected = tutor.generate(_user(PROMPT), max_new_tokens=16)
    assert reply.choices[0].message.role == "assistant" and reply.model == "tutor"
    assert reply.usage.prompt_tokens == expected.prompt_tokens == len(tutor.tokenizer.prompt_ids(_user(PROMPT)))
    assert reply.usage.completion_tokens == len(expected.token_ids)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.choices[0].finish_reason == {"eos": "stop", "stop": "stop", "length": "length"}[expected.finish_reason]


def test_a_streamed_chat_is_the_same_text_piece_by_piece(client):
    whole = client.chat.completions.create(model="tutor", messages=_user(PROMPT), max_tokens=16, temperature=0)
    chunks = list(client.chat.completions.create(model="tutor", messages=_user(PROMPT), max_tokens=16, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1, "a stream sends the text as it is generated, not at the end"
    assert "".join(pieces) == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert len({c.id for c in chunks}) == 1


def test_stop_strings_cut_the_text_and_a_seed_repeats_a_sample(client, tutor):
    greedy = tutor.generate(_user(PROMPT), max_new_tokens=24).text
    assert len(greedy) >= 6, f"the tiny tutor's answer is too short to cut: {greedy!r}"
    stop = greedy[len(greedy) // 2:len(greedy) // 2 + 2]
    reply = client.chat.completions.create(model="tutor", messages=_user(PROMPT), max_tokens=24, temperature=0,
                                           stop=[stop, "never-in-the-text"])
    assert reply.choices[0].message.content == greedy[:greedy.index(stop)]
    assert reply.choices[0].finish_reason == "stop"
    sampled = [client.chat.completions.create(model="tutor", messages=_user(PROMPT), max_tokens=12, temperature=0.9,
                                              top_p=0.8, seed=7).choices[0].message.content for _ in range(2)]
    assert sampled[0] == sampled[1] == tutor.generate(_user(PROMPT), max_new_tokens=12, temperature=0.9, top_p=0.8,
                                                      seed=7).text


def test_thirty_two_concurrent_requests_all_complete_correctly(server, tutor):
    prompts = [f"Correct: {text}" for text in ("He go home.", "They was late.", "I has a cat.", "She don't know.")]
    expected = {prompt: tutor.generate(_user(prompt), max_new_tokens=8).text for prompt in prompts}

    async def one(client: openai.AsyncOpenAI, prompt: str, stream: bool) -> tuple[str, str]:
        if not stream:
            reply = await client.chat.completions.create(model="tutor", messages=_user(prompt), max_tokens=8,
                                                         temperature=0)
            return prompt, reply.choices[0].message.content
        pieces = []
        async for chunk in await client.chat.completions.create(model="tutor", messages=_user(prompt), max_tokens=8,
                                                                temperature=0, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        return prompt, "".join(pieces)

    async def all_of_them() -> list[tuple[str, str]]:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.key, max_retries=0, timeout=600) as c:
            return await asyncio.gather(*(one(c, prompts[i % 4], stream=i % 2 == 1) for i in range(32)))

    answers = asyncio.run(all_of_them())
    assert len(answers) == 32
    assert [text for prompt, text in answers] == [expected[prompt] for prompt, _ in answers]


def test_a_client_that_leaves_mid_stream_frees_the_model(server, client, tutor):
    # a long answer: the tiny tutor ends greedy answers early, a seeded sample at temperature 2 runs on
    seeds = {seed: tutor.generate(_user(PROMPT), max_new_tokens=400, temperature=2.0, seed=seed) for seed in range(8)}
    seed, full = max(seeds.items(), key=lambda item: len(item[1].token_ids))
    assert len(full.token_ids) >= 100, "the test needs an answer long enough to leave in the middle of"
    before = _generated_tokens(server)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    body = json.dumps({"model": "tutor", "messages": _user(PROMPT), "max_tokens": 400, "temperature": 2.0,
                       "seed": seed, "stream": True})
    connection.request("POST", "/v1/chat/completions", body=body,
                       headers={"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("content-type").startswith("text/event-stream")
    assert response.readline().startswith(b"data: ")  # the stream has begun ...
    connection.sock.shutdown(socket.SHUT_RDWR)  # ... and the client is gone
    connection.close()
    _wait_idle(server)
    assert _generated_tokens(server) - before < len(full.token_ids), "generation stopped when the client left"
    again = client.chat.completions.create(model="tutor", messages=_user(PROMPT), max_tokens=400, temperature=2.0,
                                           seed=seed)
    assert again.choices[0].message.content == full.text, "the next request is served as if nothing happened"


# --- emotion -----------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_an_uploaded_ravdess_clip_gets_lexiedge_infers_answer(server, cli, small_av_artifact, emotion, shared_data,
                                                             monkeypatch):
    clip = shared_data / REAL_MP4
    reply = upload(server, clip.name, clip.read_bytes(), model="emotion")
    assert reply.status == 200, reply.body
    answer = reply.json()
    expected = emotion.predict_file(clip)
    assert answer["label"] == expected.label and answer["probabilities"] == expected.probabilities
    assert answer["model"] == "emotion" and answer["timing"]["decode_ms"] > 0 and answer["timing"]["inference_ms"] > 0
    monkeypatch.setenv("COLUMNS", "250")  # one table row per file, however long
    infer = cli("infer", str(small_av_artifact), str(clip), "--top", "3")
    assert infer.exit_code == 0, infer.stderr
    row = next(line for line in infer.stdout.splitlines() if clip.name in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    top = sorted(answer["probabilities"].items(), key=lambda item: -item[1])[:3]
    assert cells[1] == answer["label"] and cells[3] == ", ".join(f"{label} {p:.2f}" for label, p in top)


@pytest.mark.shared_data
def test_a_wav_upload_and_json_samples_are_classified_as_in_process(server, emotion, shared_data):
    wav = shared_data / REAL_WAV
    by_file = upload(server, "recording.bin", wav.read_bytes())  # no .wav name: recognised by its RIFF header
    assert by_file.status == 200, by_file.body
    assert by_file.json()["probabilities"] == emotion.predict_file(wav).probabilities
    waveform = emotion.decode_file(wav)["waveform"]
    by_samples = post_json(server, "/v1/emotion", {"samples": waveform.tolist(), "sample_rate": 16000})
    assert by_samples.status == 200, by_samples.body
    assert by_samples.json()["probabilities"] == emotion.predict(waveform=waveform).probabilities


# --- refusals ------------------------------------------------------------------------------------------


CHAT = "/v1/chat/completions"
BAD_CHATS = [  # (body, status, param or code in the error)
    ({"model": "tutor", "messages": _user("hi"), "temperature": "hot"}, 400, "temperature"),
    ({"model": "tutor", "messages": "hello"}, 400, "messages"),
    ({"model": "tutor", "messages": _user("hi"), "max_tokens": 0}, 400, "max_tokens"),
    ({"model": "tutor", "messages": _user("hi"), "max_tokens": True}, 400, "max_tokens"),
    ({"model": "tutor", "messages": _user("hi"), "n": 2}, 400, "n"),
    ({"model": "tutor", "messages": _user("hi"), "stop": [1, 2]}, 400, "stop"),
    ({"model": "tutor", "messages": _user("hi"), "stream": "yes"}, 400, "stream"),
    ({"model": "tutor", "messages": [{"role": "robot", "content": "hi"}]}, 400, None),
    ({"model": "tutor", "messages": _user("   ")}, 400, None),
    ({"model": "tutor", "messages": _user("hi"), "stream": True, "max_tokens": 4,
      "messages_extra": 1, "top_p": 0}, 400, "top_p"),
    ({"messages": _user("hi")}, 400, "model"),
    ({"model": "no-such-model", "messages": _user("hi")}, 404, "model_not_found"),
    ({"model": "emotion", "messages": _user("hi")}, 400, "model"),
]


@pytest.mark.parametrize(("body", "status", "names"), BAD_CHATS)
def test_a_bad_chat_request_gets_its_status_in_openais_error_shape(server, body, status, names):
    reply = post_json(server, CHAT, body)
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if names is not None:
        assert names in (error["param"], error["code"])


def test_the_openai_client_raises_its_own_errors(server, client):
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="gpt-4o", messages=_user("hi"))
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="tutor", messages=_user("hi"), temperature=5)
    from openai import OpenAI

    with OpenAI(base_url=server.base_url, api_key="wrong-key", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError):
            stranger.models.list()


def test_malformed_bodies_wrong_routes_and_missing_keys_are_refused_and_the_server_stays_up(server, client):
    def refused(reply, status: int) -> dict:
        assert reply.status == status, reply.body
        return reply.json()["error"]

    headers = {"Content-Type": "application/json"}
    assert refused(request(server, "POST", CHAT, b'{"model": "tutor", "messages": [', headers=headers), 400)["code"] \
        == "invalid_json"
    refused(request(server, "POST", CHAT, b"\xff\xfe not text", headers=headers), 400)
    refused(request(server, "POST", CHAT, b"[1, 2, 3]", headers=headers), 400)
    refused(request(server, "POST", CHAT, b"[" * 100_000, headers=headers), 400)  # nesting, not a crash
    assert refused(request(server, "GET", CHAT), 405)["code"] == "method_not_allowed"
    assert refused(request(server, "GET", "/v1/nothing"), 404)["code"] == "not_found"
    missing = request(server, "GET", "/v1/models", key=None)
    assert refused(missing, 401)["code"] == "invalid_api_key" and missing.headers["www-authenticate"] == "Bearer"
    refused(request(server, "GET", "/health", key="not-the-key"), 401)
    refused(request(server, "POST", "/v1/emotion", b"just text", headers={"Content-Type": "text/plain"}), 415)
    refused(upload(server, "clip.mp4", b"not a video at all", model="emotion"), 400)
    refused(upload(server, "clip.mp4", b"whatever", model="tutor"), 400)
    refused(post_json(server, "/v1/emotion", {"samples": "loud"}), 400)
    refused(post_json(server, "/v1/emotion", {"samples": [0.5] * 10}), 400)  # shorter than the runtime's minimum
    refused(post_json(server, "/v1/emotion", {"samples": [3.0] * 16000}), 400)  # out of [-1, 1]
    assert request(server, "GET", "/health").json()["status"] == "ok"
    assert client.chat.completions.create(model="tutor", messages=_user("hi"), max_tokens=2, temperature=0).choices


def test_bodies_over_the_limit_get_413_whether_announced_or_not(server):
    limit = MAX_BODY_MB << 20
    announced = http.client.HTTPConnection(server.host, server.port, timeout=60)
    announced.putrequest("POST", "/v1/emotion")
    for name, value in (("Authorization", f"Bearer {server.key}"), ("Content-Type", "application/json"),
                        ("Content-Length", str(limit + 1))):
        announced.putheader(name, value)
    announced.endheaders()
    reply = announced.getresponse()  # refused on the header, before any byte of the body
    assert reply.status == 413 and json.loads(reply.read())["error"]["code"] == "request_too_large"
    announced.close()
    chunked = http.client.HTTPConnection(server.host, server.port, timeout=60)
    chunked.request("POST", "/v1/emotion", body=iter([b"[" + b"0.0," * (1 << 18)] * (4 * MAX_BODY_MB + 1)),
                    headers={"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"},
                    encode_chunked=True)
    reply = chunked.getresponse()
    assert reply.status == 413
    chunked.close()
    assert request(server, "GET", "/health").status == 200


# --- the process ------------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps (Linux)")
def test_the_server_process_runs_on_the_runtime_alone(server):
    maps = Path(f"/proc/{server.process.pid}/maps").read_text()
    libraries = {line.split()[-1] for line in maps.splitlines() if line.split()[-1].startswith("/")}
    assert any("onnxruntime" in path for path in libraries), "the check would find a loaded library"
    assert not [path for path in libraries if re.search(r"/torch/|libtorch", path)], "torch is loaded"


def test_metrics_count_requests_by_route_and_status(server, client):
    client.models.list()
    text = request(server, "GET", "/metrics").body.decode()
    assert re.search(r'lexiedge_http_requests_total\{route="/v1/models",status="200"\} [1-9]', text)
    assert "lexiedge_http_request_seconds_bucket" in text and "lexiedge_generated_tokens_total" in text


def _generated_tokens(server: Server) -> float:
    text = request(server, "GET", "/metrics").body.decode()
    found = re.search(r'lexiedge_generated_tokens_total\{model="tutor"\} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0


def _wait_idle(server: Server, polls: int = 600) -> None:
    """Until the tutor has no request running or waiting (bounded: a stuck worker fails the test)."""
    for _ in range(polls):
        models = {m["id"]: m for m in request(server, "GET", "/health").json()["models"]}
        if models["tutor"]["pending"] == 0:
            return
        time.sleep(0.05)
    pytest.fail("the tutor is still busy: the abandoned stream was not stopped")


def test_json_samples_round_trip_exactly():
    """The emotion test compares probabilities exactly: float32 samples survive JSON unchanged."""
    samples = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    assert np.array_equal(np.asarray(json.loads(json.dumps(samples.tolist())), dtype=np.float32), samples)
