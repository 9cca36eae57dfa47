"""Who may use the server from a browser: the Host names a loopback server answers to, the origins it serves.

A server on this machine is reachable by every web page its user opens. A browser sends a page's
text/plain, form and multipart POSTs to any address without asking first (no CORS preflight), so
without a key any page could chat with the tutor or upload to the classifier; and a page whose name
the attacker re-points at 127.0.0.1 (DNS rebinding) is, to the browser, the same origin as the
server. The rules, as Ollama (``OLLAMA_ORIGINS``, its Host check on loopback binds) and llama.cpp's
server apply them:

* **Host.** Bound to loopback, the server answers only requests whose ``Host`` is a name of this
  machine for itself: ``localhost``, ``127.0.0.1``, ``[::1]`` or the ``--host`` it was started with,
  with the server's port or none. Anything else came through a rebound name: 403. Bound beyond
  loopback (which needs a key), every Host is answered.
* **Origin.** A browser names the page behind every cross-origin request and every POST. A request
  with no ``Origin`` (curl, the openai client, a page's own GETs) or with the server's own origin
  (``http://`` + its Host: the demo page at ``/``) is served; an origin named by ``--allow-origin``
  is served with CORS headers (Starlette's CORSMiddleware answers its preflights); any other, and
  ``null`` (sandboxed frames, ``file://``), gets 403 before anything else runs.

The JSON endpoints also take ``application/json`` only (415 otherwise: app.py), so a form cannot pass
as JSON.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from lexiedge_runtime.serve.protocol import ApiError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
ANY_ORIGIN = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1); a host name is not (only a resolver knows)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """As it appears in a Host header: IPv6 addresses in brackets, lower case."""
    host = host.lower()
    return f"[{host.strip('[]')}]" if ":" in host else host


def normalise_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in the form browsers send it (lower case, no default port), else None."""
    if value == ANY_ORIGIN:
        return value
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if (
        not parts.scheme
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or parts.path not in ("", "/")
    ):
        return None
    scheme = parts.scheme.lower()
    shown_port = "" if port is None or DEFAULT_PORTS.get(scheme) == port else f":{port}"
    return f"{scheme}://{host_name(parts.hostname)}{shown_port}"


@dataclass(frozen=True)
class AccessPolicy:
    """``host_names``: the names a loopback server answers to (None: any, for a server beyond loopback);
    ``port``: its port (a Host may name it or none); ``origins``: other origins allowed (``*``: all)."""

    host_names: frozenset[str] | None = None
    port: int | None = None
    origins: frozenset[str] = frozenset()

    @classmethod
    def for_bind(cls, host: str, port: int, allowed_origins: Iterable[str] = ()) -> AccessPolicy:
        names = frozenset({*LOOPBACK_NAMES, host_name(host)}) if is_loopback(host) else None
        return cls(names, port, frozenset(allowed_origins))

    @property
    def cors_origins(self) -> list[str]:
        return sorted(self.origins)

    def host_problem(self, host: str | None) -> str | None:
        """Why a request with this Host header is refused, or None."""
        if self.host_names is None or host is None:  # beyond loopback, or HTTP/1.0 without a Host
            return None
        name, port = _split_host(host.lower())
        if name in self.host_names and (port is None or port == self.port):
            return None
        names = ", ".join(sorted(self.host_names))
        return (
            f"Host {host!r} is not a name of this machine: this server is bound to loopback and answers "
            f"to {names} only (a web page that renamed itself to reach it is refused)"
        )

    def origin_problem(self, origin: str | None, host: str | None, scheme: str) -> str | None:
        """Why a request from the page at ``origin`` is refused, or None (no Origin, ours, or allowed)."""
        if origin is None:
            return None
        normal = normalise_origin(origin)
        own = normalise_origin(f"{scheme}://{host}") if host else None
        if normal is not None and (normal == own or normal in self.origins or ANY_ORIGIN in self.origins):
            return None
        return (
            f"requests from the web page at {origin} are refused: this server serves its own page and the "
            f"origins named with --allow-origin (start it with --allow-origin {origin} to allow that page)"
        )


def _split_host(host: str) -> tuple[str, int | None]:
    """``name[:port]`` or ``[v6]:port`` -> (name, port or None); a malformed port is -1 (never ours)."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return host, -1
        name, rest = host[: end + 1], host[end + 1 :]
    elif host.count(":") == 1:
        name, rest = host[: host.index(":")], host[host.index(":") :]
    elif ":" in host:  # an IPv6 address without brackets is not a Host
        return host, -1
    else:
        return host, None
    if not rest:
        return name, None
    return (name, int(rest[1:])) if rest[0] == ":" and rest[1:].isdigit() else (name, -1)


class AccessGuard:
    """The Host and Origin rules (:class:`AccessPolicy`) before any route, auth or CORS answer runs."""

    def __init__(self, app: ASGIApp, *, policy: AccessPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = origin = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"origin":
                origin = value.decode("latin-1")
        problem = self.policy.host_problem(host)
        code = "host_not_allowed"
        if problem is None:
            problem, code = (
                self.policy.origin_problem(origin, host, scope.get("scheme", "http")),
                "origin_not_allowed",
            )
        if problem is None:
            return await self.app(scope, receive, send)
        refusal = ApiError(403, problem, code=code)
        await JSONResponse(refusal.body(), status_code=refusal.status)(scope, receive, send)
