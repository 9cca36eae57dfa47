"""The HTTP API: a Starlette app over loaded models (see :mod:`lexiedge_runtime.serve`).

Every refusal is OpenAI's error object with a 4xx/5xx status, and no request can stop the server:
the runtime's typed errors become 400s, a file that decodes to more than the model reads a 413, a
full queue a 503, anything unforeseen a 500 (logged with its traceback). A streamed completion whose
client goes away is closed at the next token, which frees the model's worker and its kept KV cache
for the next request.

Before any route: the Host and Origin rules (:mod:`~lexiedge_runtime.serve.access`), CORS answers for
the allowed origins (Starlette's CORSMiddleware), then the API key and the body size limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lexiedge_runtime import TextGenerator, TextStream
from lexiedge_runtime.classifier import ClassifierRunner
from lexiedge_runtime.enrollment import NOT_ENROLLABLE, SpeakerProfile
from lexiedge_runtime.errors import ArtifactError, InputTooLargeError, MissingExtraError, RuntimeInputError
from lexiedge_runtime.serve.access import AccessGuard, AccessPolicy
from lexiedge_runtime.serve.metrics import Metrics
from lexiedge_runtime.serve.models import ServedModel
from lexiedge_runtime.serve.protocol import (
    DEFAULT_MAX_BODY_BYTES,
    ApiError,
    ChatRequest,
    Completion,
    bad_request,
    parse_json_object,
    sse,
)
from lexiedge_runtime.serve.speakers import DEFAULT_MAX_SPEAKERS, SpeakerStore
from lexiedge_runtime.serve.web import WebRuntime, is_public
from lexiedge_runtime.serve.web import routes as web_routes

SPEAKER_ROUTE = "/v1/emotion/speakers/{speaker_id}"
ROUTES = ("/", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/emotion",
          "/v1/emotion/calibrate", SPEAKER_ROUTE)
MAX_ENROLLMENT_CLIPS = 64  # clips per calibration: a speaker's neutral and calm clips are 12 on RAVDESS
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def create_app(models: dict[str, ServedModel], *, api_key: str | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, web_runtime: WebRuntime | None = None,
               access: AccessPolicy | None = None, max_speakers: int = DEFAULT_MAX_SPEAKERS) -> Starlette:
    """The ASGI app serving ``models`` (loaded once, by :func:`~lexiedge_runtime.serve.models.load_models`).

    ``web_runtime``: where the demo page at ``/`` finds the JavaScript runtime and onnxruntime-web
    (:func:`~lexiedge_runtime.serve.web.find_web_runtime`); None serves the page, which then says they
    are not installed. ``access``: the Host names and origins served (the command line builds it from
    the bound address and ``--allow-origin``); None answers any Host and no other origin. ``max_speakers``:
    the speaker profiles held (:mod:`~lexiedge_runtime.serve.speakers`).
    """
    metrics = Metrics()
    api = _Api(models, metrics, SpeakerStore(max_speakers))
    access = access or AccessPolicy()
    methods = ["GET", "POST", "DELETE"]
    cors = [Middleware(CORSMiddleware, allow_origins=access.cors_origins, allow_methods=methods,
                       allow_headers=["*"], max_age=600)] if access.origins else []
    app = Starlette(
        routes=[
            Route("/health", api.health, methods=["GET"]),
            Route("/metrics", api.metrics, methods=["GET"]),
            Route("/v1/models", api.list_models, methods=["GET"]),
            Route("/v1/chat/completions", api.chat, methods=["POST"]),
            Route("/v1/emotion", api.emotion, methods=["POST"]),
            Route("/v1/emotion/calibrate", api.calibrate, methods=["POST"]),
            Route(SPEAKER_ROUTE, api.forget_speaker, methods=["DELETE"]),
            *web_routes(models, web_runtime or WebRuntime(), key_required=api_key is not None),
        ],
        middleware=[  # outermost first
            Middleware(_Observed, metrics=metrics),
            Middleware(AccessGuard, policy=access),
            *cors,  # before the key: a browser's preflight carries none
            Middleware(_Guard, api_key=api_key, max_body_bytes=max_body_bytes),
        ],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error},
        lifespan=_lifespan,
    )
    app.state.models = models
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    for served in app.state.models.values():  # waiting requests are dropped, running ones finish on their own
        served.close()


class _Api:
    def __init__(self, models: dict[str, ServedModel], metrics: Metrics, speakers: SpeakerStore) -> None:
        self.models = models
        self.telemetry = metrics
        self.speakers = speakers

    async def health(self, request: Request) -> Response:
        models = [{"id": m.name, "task": m.task, "pending": m.pending} for m in self.models.values()]
        return JSONResponse({"status": "ok", "models": models})

    async def metrics(self, request: Request) -> Response:
        body, content_type = self.telemetry.exposition()
        return Response(body, media_type=content_type)

    async def list_models(self, request: Request) -> Response:
        data = [{"id": m.name, "object": "model", "created": m.created, "owned_by": "lexiedge", "task": m.task}
                for m in self.models.values()]
        return JSONResponse({"object": "list", "data": data})

    # --- chat ---------------------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        _require_json(request, "a chat request")
        chat = ChatRequest.parse(parse_json_object(await request.body()))
        served = self._model(chat.model, generates=True)
        generator = served.model
        assert isinstance(generator, TextGenerator)
        options = {"max_new_tokens": chat.max_tokens, "temperature": chat.temperature, "top_p": chat.top_p,
                   "stop": chat.stop or None, "seed": chat.seed}
        completion = Completion(served.name)
        if not chat.stream:
            answer = await served.run(_runtime_errors(lambda: generator.generate(chat.messages, **options)))
            self.telemetry.tokens(served.name, len(answer.token_ids))
            return JSONResponse(completion.response(answer.text, answer.finish_reason, answer.prompt_tokens,
                                                    len(answer.token_ids)))
        events = _StreamEvents(served, lambda: generator.generate(chat.messages, stream=True, **options),
                               on_end=lambda stream: self.telemetry.tokens(served.name, stream.completion_tokens))
        await events.started()  # a refused prompt is a 400 here, before any header is sent
        return StreamingResponse(self._chunks(events, completion, chat.include_usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _chunks(self, events: _StreamEvents, completion: Completion, include_usage: bool) -> AsyncIterator[bytes]:
        try:
            yield sse(completion.chunk({"role": "assistant", "content": ""}))
            async for piece in events.pieces():
                yield sse(completion.chunk({"content": piece}))
            stream = events.stream
            assert stream is not None and stream.finish_reason is not None
            yield sse(completion.chunk({}, stream.finish_reason))
            if include_usage:
                yield sse(completion.usage_chunk(stream.prompt_tokens, stream.completion_tokens))
            yield sse("[DONE]")
        except ApiError as exc:  # the status line is sent: the error goes in the stream, as OpenAI's does
            yield sse(exc.body())
        finally:
            events.cancel()  # the client went away (or the stream ended): the worker stops at the next token

    # --- emotion ------------------------------------------------------------------------------------

    async def emotion(self, request: Request) -> Response:
        content_type = _media_type(request)
        if content_type == "multipart/form-data":
            folder = Path(tempfile.mkdtemp(prefix="lexiedge-upload-"))
            try:  # the upload goes to disk as it is parsed: a queued request holds a path, not the bytes
                async with request.form(max_files=1, max_fields=4) as form:
                    upload = form.get("file")
                    model, speaker_id = _text_field(form, "model"), _text_field(form, "speaker")
                    if not isinstance(upload, UploadFile):
                        raise bad_request("a multipart upload needs the clip in a 'file' part (wav or mp4)",
                                          "file")
                    filename = upload.filename or "upload"
                    path = await run_in_threadpool(_save_upload, upload, folder, filename)
                served = self._classifier(model)
                speaker = self._speaker(served, speaker_id)
                work = _runtime_errors(lambda: _classify_file(served.model, path, filename, speaker))
                answer = await served.run(work)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        elif content_type == "application/json":
            body = parse_json_object(await request.body())
            served = self._classifier(body.get("model"))
            speaker_id = body.get("speaker")
            speaker = self._speaker(served, speaker_id)
            waveform, rate = _samples(body)
            work = _runtime_errors(lambda: _classify_samples(served.model, waveform, rate, speaker))
            answer = await served.run(work)
        else:
            raise ApiError(415, "send a wav/mp4 as multipart/form-data (part 'file') or JSON {\"samples\": [...], "
                                "\"sample_rate\": 16000} as application/json", code="unsupported_media_type")
        if speaker_id is not None:
            answer["speaker"] = speaker_id
        return JSONResponse({"object": "emotion", "model": served.name, **answer})

    # --- speaker enrollment -------------------------------------------------------------------------

    async def calibrate(self, request: Request) -> Response:
        """A speaker profile from a few clips of one speaker: held here (statistics only), named by its id."""
        content_type = _media_type(request)
        if content_type == "multipart/form-data":
            folder = Path(tempfile.mkdtemp(prefix="lexiedge-upload-"))
            try:  # the clips exist only for this request: the folder goes, whatever happens
                async with request.form(max_files=MAX_ENROLLMENT_CLIPS, max_fields=4) as form:
                    uploads, model = form.getlist("file"), _text_field(form, "model")
                    if not uploads or not all(isinstance(upload, UploadFile) for upload in uploads):
                        raise bad_request("a calibration needs the speaker's clips in 'file' parts (wav or "
                                          "mp4), one part per clip", "file")
                    named = []
                    for position, upload in enumerate(uploads):
                        assert isinstance(upload, UploadFile)
                        own = folder / str(position)  # two clips may share a name
                        own.mkdir()
                        filename = upload.filename or f"upload {position}"
                        named.append((await run_in_threadpool(_save_upload, upload, own, filename), filename))
                served = self._enrollable(model)
                work = _runtime_errors(lambda: _calibrate_files(served.model, named))
                profile = await served.run(work)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        elif content_type == "application/json":
            body = parse_json_object(await request.body())
            served = self._enrollable(body.get("model"))
            clips, rate = _clip_samples(body)
            model = served.model
            assert isinstance(model, ClassifierRunner)
            profile = await served.run(_runtime_errors(lambda: model.calibrate(clips, sample_rate=rate)))
        else:
            raise ApiError(415, "send the speaker's clips as multipart/form-data ('file' parts, wav or mp4) "
                                "or JSON {\"clips\": [[...], [...]], \"sample_rate\": 16000} as "
                                "application/json", code="unsupported_media_type")
        speaker_id = self.speakers.add(served.name, profile)
        return JSONResponse({"object": "speaker_profile", "id": speaker_id, "model": served.name,
                             "clips": profile.clips, "features": profile.features})

    async def forget_speaker(self, request: Request) -> Response:
        speaker_id = request.path_params["speaker_id"]
        self.speakers.remove(speaker_id)
        return JSONResponse({"object": "speaker_profile.deleted", "id": speaker_id, "deleted": True})

    def _enrollable(self, name: Any) -> ServedModel:
        """The classifier named (or the only one), refused at once when it takes no speaker profile."""
        served = self._classifier(name)
        model = served.model
        if not isinstance(model, ClassifierRunner) or model.enrollment is None:
            raise bad_request(f"the model {served.name!r}: {NOT_ENROLLABLE}", "model")
        return served

    def _speaker(self, served: ServedModel, speaker_id: Any) -> SpeakerProfile | None:
        return None if speaker_id is None else self.speakers.get(speaker_id, served.name)

    # --- models -------------------------------------------------------------------------------------

    def _model(self, name: Any, *, generates: bool) -> ServedModel:
        if not isinstance(name, str) or name not in self.models:
            known = ", ".join(m.name for m in self.models.values() if m.generates == generates) or "none"
            raise ApiError(404, f"the model {name!r} is not served here; served: {known}", param="model",
                           code="model_not_found")
        served = self.models[name]
        if served.generates != generates:
            where = "POST /v1/chat/completions" if served.generates else "POST /v1/emotion"
            raise bad_request(f"the model {name!r} is a {served.task} model: use {where}", "model")
        return served

    def _classifier(self, name: Any) -> ServedModel:
        if name is None:
            classifiers = [m for m in self.models.values() if not m.generates]
            if len(classifiers) != 1:
                names = ", ".join(m.name for m in classifiers) or "none"
                raise bad_request(f"name the classifier in 'model' (served: {names})", "model")
            return classifiers[0]
        return self._model(name, generates=False)


AHEAD = 4  # pieces a streaming worker may generate before the client has taken them
ROOM_POLL_S = 0.5  # how often a worker waiting for the client checks for a cancel
STALLED_CLIENT_S = 30.0  # a streaming client that takes no piece for this long is treated as gone


class _StreamEvents:
    """A streamed generation run on the model's worker, its pieces handed to the event loop as they come."""

    def __init__(self, served: ServedModel, start: Callable[[], TextStream],
                 on_end: Callable[[TextStream], None]) -> None:
        self.served, self.start, self.on_end = served, start, on_end
        self.stream: TextStream | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._cancelled = threading.Event()
        # Backpressure: the worker runs at most AHEAD pieces ahead of the client. Without it a fast model
        # finished a 400-token answer for a client that had already left, before the disconnect was seen.
        self._room = threading.Semaphore(AHEAD)
        self._loop = asyncio.get_running_loop()

    async def started(self) -> None:
        self.served.submit(self._work)
        kind, value = await self._queue.get()
        if kind == "error":
            raise _as_api_error(value)
        self.stream = value

    async def pieces(self) -> AsyncIterator[str]:
        while True:
            kind, value = await self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise _as_api_error(value)
            self._room.release()  # taken by the client: the worker may make one more
            yield value

    def cancel(self) -> None:
        self._cancelled.set()
        self._room.release()  # a worker waiting for room wakes up, sees the cancel and stops

    def _work(self) -> None:
        """On the model's worker thread: start, then pass each piece on until the end or a cancel."""
        if self._cancelled.is_set():
            return
        try:
            stream = self.start()
        except Exception as exc:  # a refused prompt, reported to the waiting request
            self._put("error", exc)
            return
        self._put("start", stream)
        try:
            for piece in stream:
                waited = 0.0
                while not self._room.acquire(timeout=ROOM_POLL_S) and not self._cancelled.is_set():
                    waited += ROOM_POLL_S  # the client has not taken the pieces already sent
                    if waited >= STALLED_CLIENT_S:  # a client that stopped reading does not hold the model
                        self._cancelled.set()
                if self._cancelled.is_set():
                    break
                self._put("piece", piece)
        except Exception as exc:
            self._put("error", exc)
            return
        finally:
            stream.close()  # ends the kept cache's lease now, not when the stream is collected
            self.on_end(stream)  # tokens generated, however it ended
        self._put("end", None)

    def _put(self, kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the server is shutting down, no one listens
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))


def _require_json(request: Request, what: str) -> None:
    """415 unless the body says it is JSON: browsers send text/plain and forms cross-origin without asking."""
    if _media_type(request) != "application/json":
        sent = request.headers.get("content-type")
        raise ApiError(415, f"{what} must be sent as application/json (got {sent!r})", code="unsupported_media_type")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


UPLOAD_CHUNK = 1 << 20


def _save_upload(upload: UploadFile, folder: Path, filename: str) -> Path:
    """The upload copied into ``folder`` in chunks, named so the decoder picks the reader its bytes need."""
    name = _SAFE_NAME.sub("_", Path(filename).name)[-100:] or "upload"
    upload.file.seek(0)
    head = upload.file.read(12)
    is_wav = head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    if is_wav != name.lower().endswith(".wav"):  # the decoder picks soundfile (wav) or PyAV (the rest) by suffix
        name = f"{name}.wav" if is_wav else f"{name}.media"
    path = folder / name
    upload.file.seek(0)
    with path.open("wb") as sink:
        shutil.copyfileobj(upload.file, sink, UPLOAD_CHUNK)
    return path


def _text_field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"'{name}' must be a text field", name)
    return value


def _classify_file(model: ClassifierRunner | TextGenerator, path: Path, filename: str,
                   speaker: SpeakerProfile | None = None) -> dict[str, Any]:
    """An uploaded clip through ``predict_file``'s decoding; messages name the upload, not the temp file."""
    assert isinstance(model, ClassifierRunner)
    try:
        started = time.perf_counter()
        arrays = model.decode_file(path)
        decoded = time.perf_counter()
        result = model.predict(**arrays, speaker=speaker)
        done = time.perf_counter()
    except InputTooLargeError as exc:  # a decompression bomb, or a recording longer than the model reads
        raise ApiError(413, str(exc).replace(str(path), filename), code="input_too_large") from None
    except RuntimeInputError as exc:
        raise bad_request(str(exc).replace(str(path), filename)) from None
    return _answer(result, decode_ms=(decoded - started) * 1000, inference_ms=(done - decoded) * 1000)


def _classify_samples(model: ClassifierRunner | TextGenerator, waveform: np.ndarray, rate: int,
                      speaker: SpeakerProfile | None = None) -> dict[str, Any]:
    assert isinstance(model, ClassifierRunner)
    started = time.perf_counter()
    result = model.predict(waveform=waveform, sample_rate=rate, speaker=speaker)
    return _answer(result, decode_ms=0.0, inference_ms=(time.perf_counter() - started) * 1000)


def _calibrate_files(model: ClassifierRunner | TextGenerator, named: list[tuple[Path, str]]
                     ) -> SpeakerProfile:
    """Uploaded clips through ``calibrate``'s decoding; messages name the uploads, not the temp files."""
    assert isinstance(model, ClassifierRunner)
    try:
        return model.calibrate([path for path, _ in named])
    except RuntimeInputError as exc:
        message = str(exc)
        for path, filename in named:
            message = message.replace(str(path), filename)
        raise type(exc)(message) from None


def _answer(result: Any, *, decode_ms: float, inference_ms: float) -> dict[str, Any]:
    """The response's fields; ``normalization`` ("speaker" or "global") for a model normalised by its
    speaker."""
    answer = {"label": result.label, "probabilities": result.probabilities,
              "timing": {"decode_ms": round(decode_ms, 3), "inference_ms": round(inference_ms, 3)}}
    if result.normalization is not None:
        answer["normalization"] = result.normalization
    return answer


def _samples(body: dict[str, Any]) -> tuple[np.ndarray, int]:
    samples = body.get("samples")
    if not isinstance(samples, list) or not samples:
        raise bad_request("'samples' must be a non-empty list of mono audio samples in [-1, 1]", "samples")
    rate = _sample_rate(body)
    return _numbers(samples, "samples"), rate


def _clip_samples(body: dict[str, Any]) -> tuple[list[np.ndarray], int]:
    """A calibration's JSON: ``clips``, a list of clips each a list of mono samples, and their
    ``sample_rate``."""
    clips = body.get("clips")
    if not isinstance(clips, list) or not clips or not all(isinstance(clip, list) and clip for clip in clips):
        raise bad_request("'clips' must be a non-empty list of clips, each a non-empty list of mono audio "
                          "samples in [-1, 1]", "clips")
    if len(clips) > MAX_ENROLLMENT_CLIPS:
        raise bad_request(f"'clips' holds {len(clips)} clips; a calibration takes at most "
                          f"{MAX_ENROLLMENT_CLIPS}", "clips")
    rate = _sample_rate(body)
    return [_numbers(clip, f"clips[{position}]") for position, clip in enumerate(clips)], rate


def _sample_rate(body: dict[str, Any]) -> int:
    rate = body.get("sample_rate", 16000)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise bad_request(f"'sample_rate' must be a positive whole number of Hz, got {json.dumps(rate)[:40]}",
                          "sample_rate")
    return rate


def _numbers(samples: list[Any], name: str) -> np.ndarray:
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in samples):
        raise bad_request(f"'{name}' must hold numbers only (one mono channel)", name)
    return np.asarray(samples, dtype=np.float32)


def _runtime_errors(work: Callable[[], Any]) -> Callable[[], Any]:
    """``work`` with the runtime's refusals turned into API errors (it runs on a worker thread)."""
    def run() -> Any:
        try:
            return work()
        except Exception as exc:
            raise _as_api_error(exc) from None
    return run


def _as_api_error(exc: BaseException) -> BaseException:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, MissingExtraError):  # the server's installation, not the request
        return ApiError(501, str(exc), kind="server_error", code="not_installed")
    if isinstance(exc, InputTooLargeError):
        return ApiError(413, str(exc), code="input_too_large")
    if isinstance(exc, (RuntimeInputError, ArtifactError)):
        return bad_request(str(exc))
    return exc  # a bug: the 500 handler logs it


# --- middleware and error handlers -------------------------------------------------------------------


class _Guard:
    """Bearer auth (when a key is set) and the body size limit, before any route runs."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app, self.limit = app, max_body_bytes
        self.api_key = api_key.encode("ascii") if api_key is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.lower(): value for key, value in scope["headers"]}
        if self.api_key is not None and not is_public(scope["path"]) \
                and not _authorised(headers.get(b"authorization", b""), self.api_key):
            error = ApiError(401, "a valid API key is required: send 'Authorization: Bearer <key>'",
                             code="invalid_api_key")
            return await _api_error_response(error, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await _api_error_response(self._too_large())(scope, receive, send)
        received = 0

        async def limited() -> Message:  # chunked bodies have no Content-Length: count what arrives
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise self._too_large()
            return message

        await self.app(scope, limited, send)

    def _too_large(self) -> ApiError:
        return ApiError(413, f"the request body is over the server's limit of {self.limit} bytes "
                             "(lexiedge serve --max-body-mb)", code="request_too_large")


def _authorised(header: bytes, key: bytes) -> bool:
    """``Bearer <key>``, compared byte for byte as the client sent it (keys are printable ASCII: cli.py)."""
    scheme, _, token = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key)


class _Observed:
    """Prometheus counters of every request (route, status, latency); a client gone mid-stream is not an error."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        speakers = path.startswith("/v1/emotion/speakers/")  # one route for every profile's id
        route = path if path in ROUTES else SPEAKER_ROUTE if speakers else "other"
        status, started = 500, time.perf_counter()

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        except (ClientDisconnect, OSError):
            status = 499  # nginx's "client closed request": the response was cut, the server is fine
        finally:
            self.metrics.request(route, status, time.perf_counter() - started)


def _api_error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _api_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method, a malformed multipart body) in OpenAI's shape."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    message = exc.detail if exc.status_code not in (404, 405) else \
        f"{request.method} {request.url.path}: {'no such route' if exc.status_code == 404 else 'method not allowed'}"
    error = ApiError(exc.status_code, str(message), code=code)
    return _api_error_response(error, dict(exc.headers or {}))


async def _internal_error(request: Request, exc: Exception) -> Response:
    return _api_error_response(ApiError(500, f"internal error ({type(exc).__name__}); the server logged it",
                                        kind="server_error", code="internal_error"))
