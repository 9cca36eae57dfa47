"""``lexiedge serve`` / ``lexiedge-serve``: load artifacts once and serve them with uvicorn.

The options live here, in the runtime distribution, so the server starts in an app's environment
without the toolkit (``lexiedge-serve``, from ``lexiedge-runtime[serve]``); the toolkit's
``lexiedge serve`` passes its arguments on unchanged, and imports no plugin (and so no torch) to do it.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from lexiedge_runtime.errors import LexiedgeError
from lexiedge_runtime.extras import require

API_KEY_ENV = "LEXIEDGE_API_KEY"
MAX_BODY_MB = 4096  # bodies are read into memory: a limit above this is a typo
MAX_SPEAKERS = 1_000_000  # profiles are held in memory (about 1 KB each): more is a typo


def parser(prog: str = "lexiedge-serve") -> argparse.ArgumentParser:
    from lexiedge_runtime.serve.models import DEFAULT_MAX_QUEUE
    from lexiedge_runtime.serve.protocol import DEFAULT_MAX_BODY_BYTES
    from lexiedge_runtime.serve.speakers import DEFAULT_MAX_SPEAKERS

    p = argparse.ArgumentParser(
        prog=prog,
        description="Serve lexiedge artifacts over HTTP: POST /v1/chat/completions (OpenAI-compatible) for "
        "tutor artifacts, POST /v1/emotion (and /v1/emotion/calibrate: speaker enrollment) for classifier "
        "artifacts, GET /v1/models, /health, /metrics.",
        epilog=f"Example: {prog} artifacts/qwen-lora/onnx-int4 artifacts/emotion-av/onnx-int8 --port 8000; "
        "then any OpenAI client with base_url http://127.0.0.1:8000/v1. Bounds, origins and keys: "
        "docs/serving.md.",
    )
    p.add_argument(
        "artifacts",
        nargs="+",
        metavar="ARTIFACT",
        help="artifact directory written by `lexiedge export`; NAME=DIR serves it as NAME "
        "(default: <model>-<target> from its manifest)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only); any other than 127.0.0.1, ::1 "
        "or localhost needs an API key",
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any free one)")
    p.add_argument(
        "--api-key",
        default=None,
        help=f"require 'Authorization: Bearer KEY' on every request (default: ${API_KEY_ENV}, else none); "
        "printable ASCII",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN (scheme://host[:port]; * for any) use the API from a browser; "
        "repeatable (default: the server's own page only)",
    )
    p.add_argument(
        "--max-body-mb",
        type=float,
        default=DEFAULT_MAX_BODY_BYTES / (1 << 20),
        help="largest request body accepted, in MiB (default %(default)g); larger ones get 413",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULT_MAX_QUEUE,
        help="requests per model running or waiting before more get 503 (default %(default)d)",
    )
    p.add_argument(
        "--max-speakers",
        type=int,
        default=DEFAULT_MAX_SPEAKERS,
        help="speaker profiles (POST /v1/emotion/calibrate) held at most; a new one evicts the least "
        "recently used (default %(default)d)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="open connections at most (default: half the open-file limit, at most 1000); over it, the "
        "connection waiting longest for its request headers is closed",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds a connection has to send a request's headers before it is closed (default 10)",
    )
    p.add_argument("--device", default="auto", help="auto (default), tensorrt, cuda or cpu")
    p.add_argument(
        "--threads", type=int, default=None, help="intra-op threads per model (default: ONNX Runtime's)"
    )
    p.add_argument(
        "--allow-unverified",
        action="store_true",
        help="serve artifacts whose export verification failed (warns)",
    )
    p.add_argument(
        "--web-runtime",
        default=None,
        metavar="DIR",
        help="runtime-js folder (src/ and node_modules/onnxruntime-web) for the demo page at / "
        "(default: $LEXIEDGE_WEB_RUNTIME, else runtime-js/ of this source checkout)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default info: one line per request)",
    )
    return p


@dataclass(frozen=True)
class Settings:
    """The command line, checked."""

    api_key: str | None
    max_body_bytes: int
    allowed_origins: tuple[str, ...]
    max_connections: int
    header_timeout: float
    max_speakers: int


def main(argv: Sequence[str] | None = None, prog: str = "lexiedge-serve") -> int:
    """Check, bind, load every artifact, serve until interrupted; a user error is one line, exit 2 (3)."""
    args = parser(prog).parse_args(argv)
    listening: list[socket.socket] = []
    try:
        require("serve", f"`{prog}`")
        settings = checked(args)
        from lexiedge_runtime.serve.access import AccessPolicy
        from lexiedge_runtime.serve.app import create_app
        from lexiedge_runtime.serve.models import load_models
        from lexiedge_runtime.serve.web import find_web_runtime

        web_runtime = find_web_runtime(args.web_runtime)
        listening = listen(args.host, args.port)  # before loading: a port in use is said at once
        models = load_models(
            args.artifacts,
            device=args.device,
            threads=args.threads,
            allow_unverified=args.allow_unverified,
            max_queue=args.max_queue,
        )
    except LexiedgeError as exc:
        for sock in listening:
            sock.close()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    port = listening[0].getsockname()[1]
    policy = AccessPolicy.for_bind(args.host, port, settings.allowed_origins)
    app = create_app(
        models,
        api_key=settings.api_key,
        max_body_bytes=settings.max_body_bytes,
        web_runtime=web_runtime,
        access=policy,
        max_speakers=settings.max_speakers,
    )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    listed = ", ".join(f"{m.name} ({m.task})" for m in models.values())
    print(
        f"serving {listed} on http://{shown}:{port} (OpenAI base_url http://{shown}:{port}/v1"
        f"{', API key required' if settings.api_key else ''}; demo page http://{shown}:{port}/)",
        file=sys.stderr,
        flush=True,
    )
    if web_runtime.problem:
        print(
            f"note: the demo page at / cannot run models in the browser: {web_runtime.problem}",
            file=sys.stderr,
        )
    try:
        serve(app, listening, settings, host=args.host, port=port, log_level=args.log_level)
    finally:
        for sock in listening:
            sock.close()
    return 0


def serve(
    app: object, listening: list[socket.socket], settings: Settings, *, host: str, port: int, log_level: str
) -> None:
    """uvicorn on the bound sockets, speaking HTTP through the bounded protocol (serve/connections.py)."""
    import functools

    import uvicorn

    from lexiedge_runtime.serve.connections import BACKLOG, BoundedH11Protocol, ConnectionLimits

    limits = ConnectionLimits(settings.max_connections, settings.header_timeout)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws="none",
        backlog=BACKLOG,
        http=functools.partial(BoundedH11Protocol, limits=limits),  # type: ignore[arg-type]
        timeout_graceful_shutdown=3,  # a short graceful shutdown: open streams are cut on Ctrl-C, not awaited
    )
    uvicorn.Server(config).run(sockets=listening)


def checked(args: argparse.Namespace) -> Settings:
    """The options' values, or a :class:`ServeError` naming the first bad one (one line)."""
    from lexiedge_runtime.serve.access import is_loopback, normalise_origin
    from lexiedge_runtime.serve.connections import (
        DEFAULT_HEADER_TIMEOUT_S,
        default_max_connections,
        descriptor_limit,
        most_connections,
    )
    from lexiedge_runtime.serve.models import ServeError

    if not 0 <= args.port <= 65535:
        raise ServeError(f"--port {args.port}: expected 0-65535")
    if not (math.isfinite(args.max_body_mb) and 0 < args.max_body_mb <= MAX_BODY_MB):
        raise ServeError(
            f"--max-body-mb {args.max_body_mb:g}: expected a size above 0 and at most {MAX_BODY_MB}"
        )
    if args.max_queue < 1:
        raise ServeError(f"--max-queue {args.max_queue}: expected 1 or more")
    if not 1 <= args.max_speakers <= MAX_SPEAKERS:
        raise ServeError(f"--max-speakers {args.max_speakers}: expected 1 to {MAX_SPEAKERS}")
    if args.threads is not None and args.threads < 1:
        raise ServeError(f"--threads {args.threads}: expected 1 or more")
    origins = []
    for origin in args.allow_origin:
        normal = normalise_origin(origin)
        if normal is None:
            raise ServeError(
                f"--allow-origin {origin}: expected an origin as a browser sends it, scheme://host[:port] "
                "without a path (e.g. http://localhost:3000), or * for any"
            )
        origins.append(normal)
    descriptors = descriptor_limit()
    most = most_connections(descriptors)
    connections = (
        args.max_connections if args.max_connections is not None else default_max_connections(descriptors)
    )
    if connections < 1 or (most is not None and connections > most):
        room = (
            f"at most {most} (this process may open {descriptors} files: ulimit -n)" if most else "1 or more"
        )
        raise ServeError(f"--max-connections {connections}: expected 1 or more and {room}")
    timeout = args.header_timeout if args.header_timeout is not None else DEFAULT_HEADER_TIMEOUT_S
    if not (math.isfinite(timeout) and 0 < timeout <= 3600):
        raise ServeError(f"--header-timeout {timeout:g}: expected seconds above 0 and at most 3600")
    api_key = _api_key(args.api_key)
    if api_key is None and not is_loopback(args.host):
        raise ServeError(
            f"refusing to serve on {args.host} without an API key: anyone who can reach this machine "
            f"could use the models; pass --api-key (or set {API_KEY_ENV}), or bind 127.0.0.1"
        )
    return Settings(
        api_key, int(args.max_body_mb * (1 << 20)), tuple(origins), connections, timeout, args.max_speakers
    )


def _api_key(option: str | None) -> str | None:
    """--api-key, else $LEXIEDGE_API_KEY, else None; an empty or non-ASCII key is refused either way."""
    from lexiedge_runtime.serve.models import ServeError

    if option is not None:
        key, where = option, "--api-key"
    elif API_KEY_ENV in os.environ:
        key, where = os.environ[API_KEY_ENV], f"${API_KEY_ENV}"
    else:
        return None
    if not key:
        raise ServeError(f"the API key ({where}) is empty: give a key, or none at all to serve without one")
    if not all("!" <= char <= "~" for char in key):  # what every HTTP client sends in a header, byte for byte
        raise ServeError(
            f"the API key ({where}) must be printable ASCII without spaces: HTTP clients send other "
            "characters in headers differently, or not at all"
        )
    return key


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` names (localhost: 127.0.0.1 and ::1), one port for all.

    As asyncio's own bind: SO_REUSEADDR (a restart within TIME_WAIT binds), IPv6 sockets IPv6-only, and
    an address family this machine lacks skipped. A failure is one line (:class:`ServeError`).
    """
    from lexiedge_runtime.serve.connections import BACKLOG
    from lexiedge_runtime.serve.models import ServeError

    shown = f"[{host}]" if ":" in host else host
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    bound: list[socket.socket] = []
    seen: set[tuple] = set()
    for family, kind, proto, _, address in addresses:
        if (family, address[:2]) in seen:
            continue
        seen.add((family, address[:2]))
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            chosen = (address[0], bound[0].getsockname()[1] if bound else port, *address[2:])
            sock.bind(chosen)
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRNOTAVAIL and len(addresses) > 1:  # e.g. ::1 where IPv6 is off
                continue
            for other in bound:
                other.close()
            raise ServeError(f"cannot bind {shown}:{port}: {_bind_problem(exc)}") from None
        bound.append(sock)
    if not bound:
        raise ServeError(f"cannot bind {shown}:{port}: none of its addresses exists on this machine")
    return bound


def _bind_problem(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the port is in use (another server?): stop it or pick another --port"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges): pick another --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "this machine has no such address: check --host"
    return (exc.strerror or str(exc)).lower()


if __name__ == "__main__":
    sys.exit(main())
