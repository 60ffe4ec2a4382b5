"""The proxy's Prometheus metrics, served at ``/-/metrics``.

Per deployment: requests by status code, errors, latency, requests in flight and waiting.
Kept in a registry of the proxy's own so nothing else in the process leaks into them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ProxyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "serve_num_http_requests",
            "HTTP requests answered by the proxy.",
            ("deployment", "route", "status_code"),
            registry=self.registry,
        )
        self.errors = Counter(
            "serve_num_http_error_requests",
            "HTTP requests answered with a status of 500 or more (408 and 499 included).",
            ("deployment", "route", "status_code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "serve_http_request_latency_seconds",
            "Time from a request's arrival to its answer.",
            ("deployment", "route"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "serve_num_ongoing_http_requests",
            "HTTP requests the proxy is handling now.",
            ("deployment",),
            registry=self.registry,
        )
        self.queued = Gauge(
            "serve_num_queued_http_requests",
            "HTTP requests waiting in the proxy for a replica with room.",
            ("deployment",),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter | None]] = {}
        # Counted in a plain dict (the gauge's lock costs more than the request's routing)
        # and copied into the gauge when the metrics are read.
        self._ongoing: dict[str, int] = {}

    def ongoing(self, deployment: str, delta: int) -> None:
        self._ongoing[deployment] = self._ongoing.get(deployment, 0) + delta

    def finished(self, deployment: str, route: str, status: int, seconds: float) -> None:
        key = (deployment, route, status)
        children = self._children.get(key)
        if children is None:
            code = str(status)
            error = (
                self.errors.labels(deployment, route, code)
                if status >= 500 or status in (408, 499)
                else None
            )
            children = (
                self.requests.labels(deployment, route, code),
                self.latency.labels(deployment, route),
                error,
            )
            self._children[key] = children
        requests, latency, errors = children
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def set_queued(self, deployment: str, count: int) -> None:
        self.queued.labels(deployment).set(count)

    def exposition(self) -> tuple[bytes, str]:
        for deployment, count in self._ongoing.items():
            self.in_flight.labels(deployment).set(count)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
