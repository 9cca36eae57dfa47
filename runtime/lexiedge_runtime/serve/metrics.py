"""Prometheus counters of a server (``GET /metrics``), with the maintained ``prometheus-client``.

Each app has its own registry, so two servers in one process (tests, an app embedding two) never
share or clash over counters. Routes are the five the server has, anything else is ``other``: label
values stay few however clients misspell URLs.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Requests by route and status, their latency, and tokens generated per model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter("lexiedge_http_requests", "HTTP requests answered, by route and status",
                                 ["route", "status"], registry=self.registry)
        self._latency = Histogram("lexiedge_http_request_seconds", "Time from request to the response's end",
                                  ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._tokens = Counter("lexiedge_generated_tokens", "Tokens generated, by model", ["model"],
                               registry=self.registry)

    def request(self, route: str, status: int, seconds: float) -> None:
        self._requests.labels(route=route, status=str(status)).inc()
        self._latency.labels(route=route).observe(seconds)

    def tokens(self, model: str, count: int) -> None:
        self._tokens.labels(model=model).inc(count)

    def exposition(self) -> tuple[bytes, str]:
        """The text format Prometheus scrapes, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
