"""Prometheus metrics: requests, latency, solve time, and jobs by state."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    """The service's metrics, in a registry of their own (one per app)."""

    def __init__(self, job_counts: Callable[[], dict[str, int]]):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "peft_planner_http_requests", "HTTP requests by method, route and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "peft_planner_http_request_seconds", "HTTP request latency by method and route.",
            ["method", "route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.solve = Histogram(
            "peft_planner_solve_seconds", "Solver time per plan by objective and status.",
            ["objective", "status"], registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.registry.register(_JobsCollector(job_counts))


class _JobsCollector:
    def __init__(self, job_counts: Callable[[], dict[str, int]]):
        self._job_counts = job_counts

    def collect(self):
        gauge = GaugeMetricFamily("peft_planner_jobs", "Profiling jobs by state.", labels=["state"])
        for state, n in self._job_counts().items():
            gauge.add_metric([state], n)
        yield gauge


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (set on the scope by routing)."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)
