"""Open connections are bounded: a deadline for each request's headers and a cap below the descriptor limit.

uvicorn closes a connection that stays idle after a response (``timeout_keep_alive``), bounds a
request head's size (h11's 16 KiB) and can answer 503 over ``limit_concurrency``, but only once a
request's headers are in (a request-start timeout was proposed in uvicorn's issue #157 and does not
exist): a connection that sends half a request and waits (slowloris) is kept forever, and 1,100 of
them took every file descriptor of a server with ``ulimit -n 1024``, after which it accepted
nothing, /health included. So the server speaks HTTP through
:class:`BoundedH11Protocol`, uvicorn's h11 protocol with two additions:

* a header deadline: a connection has ``header_timeout`` seconds from its opening (or from the end
  of its last response) to deliver a complete request head, else it is closed;
* a connection cap, ``max_connections``, by default half the descriptor limit
  (:func:`default_max_connections`): a connection over the cap closes the one that has waited
  longest for its headers (idle keep-alive connections included), or itself when every other
  connection has a request running. A new client is then served at once, even while the cap is
  full of half-open connections.

The listening backlog is :data:`BACKLOG`, and asyncio also accepts up to that many connections per
event-loop tick. A connection reaches the cap two ticks after its accept (a task, then
``connection_made``), and a closed one gives its descriptor back a tick after ``close()``, so while
clients keep connecting about three ticks' worth of descriptors are open beyond the cap (measured:
a peak of cap + 95 descriptors with BACKLOG 32 under 2,400 slowloris connections from 8 threads;
with BACKLOG 128 the same flood took every descriptor of a ``ulimit -n 512`` server).
:data:`IN_FLIGHT` keeps room for four ticks.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 1000
BACKLOG = 32  # small: each accepted batch holds descriptors before the cap can see them (module doc)
IN_FLIGHT = 4 * BACKLOG  # descriptors accepted or closing but not yet counted against the cap
FD_RESERVE = 64  # descriptors for everything but connections: model files, uploads' temp files, pipes


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S


def descriptor_limit() -> int | None:
    """This process's soft limit on open files (``ulimit -n``); None where there is none to read."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def default_max_connections(descriptors: int | None) -> int:
    """Half the descriptor limit (the rest: connections in flight, files, uploads), at most 1000, and
    never more than :func:`most_connections` allows."""
    if descriptors is None:
        return DEFAULT_MAX_CONNECTIONS
    return min(DEFAULT_MAX_CONNECTIONS, max(1, descriptors // 2), _room(descriptors))


def most_connections(descriptors: int | None) -> int | None:
    """The largest cap that keeps connections, those in flight and the reserve within the descriptor limit."""
    return None if descriptors is None else _room(descriptors)


def _room(descriptors: int) -> int:
    return max(1, descriptors - IN_FLIGHT - FD_RESERVE)


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection cap (see the module)."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.waiting_since: float | None = None  # when it began waiting for a request's headers
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_in()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a request's head is in: its body or its answer is next
            self._headers_in()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # keep-alive: the next head
            self._await_headers()

    # --- the deadline -----------------------------------------------------------------------------

    def _await_headers(self) -> None:
        self._headers_in()
        self.waiting_since = time.monotonic()
        self._deadline = self.loop.call_later(self.limits.header_timeout, self._headers_late)

    def _headers_in(self) -> None:
        self.waiting_since = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self.waiting_since is not None:
            self._close()

    def _close(self) -> None:
        self._headers_in()
        if not self.transport.is_closing():
            self.transport.close()

    # --- the cap ----------------------------------------------------------------------------------

    def _make_room(self) -> None:
        """Close the connection that has waited longest for headers; this one if none is waiting."""
        waiting: list[BoundedH11Protocol] = [
            c for c in self.connections if isinstance(c, BoundedH11Protocol) and c is not self
            and c.waiting_since is not None
        ]
        victim = min(waiting, key=lambda c: c.waiting_since or 0.0) if waiting else self
        victim._close()
