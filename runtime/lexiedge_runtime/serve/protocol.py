"""The OpenAI wire format the server speaks: requests checked in plain Python, responses and errors built.

Only what a chat completion needs is read (``model``, ``messages``, ``max_tokens`` /
``max_completion_tokens``, ``temperature``, ``top_p``, ``stop``, ``stream``, ``stream_options``,
``seed``, ``n``); other keys are ignored, as OpenAI-compatible servers do, except features this
server does not have (``n`` > 1, ``logprobs``, ``tools``), which are refused rather than silently
dropped. Defaults are OpenAI's: temperature 1, top_p 1. Every refusal is an :class:`ApiError`
whose body is OpenAI's error object, so any OpenAI client raises its own typed exception for it.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from lexiedge_runtime.generator import FinishReason

DEFAULT_MAX_BODY_BYTES = 32 << 20  # a few RAVDESS-sized mp4s, or 10x a clip's samples as JSON
DEFAULT_MAX_TOKENS = 512  # when a request names none; the model's context still bounds it
MAX_STOP_STRINGS = 4  # OpenAI's limit
ROLE_ALIASES = {"developer": "system"}  # OpenAI's newer name for the system role
FINISH_REASONS: dict[FinishReason, str] = {"eos": "stop", "stop": "stop", "length": "length"}


class ApiError(Exception):
    """A request the server refuses: an HTTP status and OpenAI's ``{"error": {...}}`` body."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying why not."""
    try:
        value = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8 text; send JSON") from None
    except json.JSONDecodeError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                          code="invalid_json") from None
    except RecursionError:
        raise bad_request("the request body nests too deeply to be a chat request") from None
    if not isinstance(value, dict):
        raise bad_request(f"the request body must be a JSON object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class ChatRequest:
    """A checked ``POST /v1/chat/completions`` body."""

    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    seed: int | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ChatRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("'model' is required: the name of a served model (GET /v1/models lists them)", "model")
        if body.get("n") not in (None, 1):
            raise bad_request("this server generates one choice per request: 'n' must be 1", "n")
        if body.get("logprobs") or body.get("top_logprobs"):
            raise bad_request("logprobs are not supported by this server", "logprobs")
        if body.get("tools") or body.get("functions"):
            raise bad_request("tools and function calling are not supported by this server", "tools")
        maximum = body.get("max_completion_tokens", body.get("max_tokens"))
        stream_options = body.get("stream_options") or {}
        if not isinstance(stream_options, dict):
            raise bad_request("'stream_options' must be an object", "stream_options")
        return cls(
            model=model,
            messages=_messages(body.get("messages")),
            max_tokens=DEFAULT_MAX_TOKENS if maximum is None else _whole(maximum, "max_tokens", low=1),
            temperature=_number(body.get("temperature", 1.0), "temperature", 0.0, 2.0),
            top_p=_number(body.get("top_p", 1.0), "top_p", 0.0, 1.0, open_low=True),
            stop=_stops(body.get("stop")),
            stream=_flag(body.get("stream", False), "stream"),
            include_usage=_flag(stream_options.get("include_usage", False), "stream_options.include_usage"),
            seed=None if body.get("seed") is None else _whole(body["seed"], "seed", low=0),
        )


def _messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of {\"role\", \"content\"} objects", "messages")
    checked = []
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object with 'role' and 'content'", where)
        role = ROLE_ALIASES.get(message.get("role"), message.get("role"))  # type: ignore[arg-type]
        content = message.get("content")
        if isinstance(content, list):  # content parts: text only
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise bad_request(f"{where}.content: only text parts ({{\"type\": \"text\", \"text\": ...}}) are "
                                  "supported", f"{where}.content")
            content = "".join(part["text"] for part in content)
        if not isinstance(role, str) or not isinstance(content, str):
            raise bad_request(f"{where} must have a string 'role' and a string (or text parts) 'content'", where)
        checked.append({"role": role, "content": content})  # roles and text are the runtime's to judge
    return checked


def _whole(value: Any, name: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise bad_request(f"'{name}' must be a whole number >= {low}, got {json.dumps(value)[:60]}", name)
    return value


def _number(value: Any, name: str, low: float, high: float, *, open_low: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (low < value if open_low else low <= value) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise bad_request(f"'{name}' must be a number in {bracket}{low:g}, {high:g}], got {json.dumps(value)[:60]}", name)
    return float(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"'{name}' must be true or false, got {json.dumps(value)[:60]}", name)
    return value


def _stops(value: Any) -> list[str]:
    stops = [value] if isinstance(value, str) else value
    if stops is None:
        return []
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) \
            or len(stops) > MAX_STOP_STRINGS:
        raise bad_request(f"'stop' must be a non-empty string or a list of at most {MAX_STOP_STRINGS} of them", "stop")
    return stops


# --- responses -------------------------------------------------------------------------------------


@dataclass
class Completion:
    """One chat completion's identity, shared by its response or every chunk of its stream."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def response(self, text: str, finish: FinishReason, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": FINISH_REASONS[finish]}],
            "usage": usage(prompt_tokens, completion_tokens),
        }

    def chunk(self, delta: dict[str, str], finish: FinishReason | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": None if finish is None else FINISH_REASONS[finish]}],
        }

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage(prompt_tokens, completion_tokens)}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event: ``data: <json>`` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()
