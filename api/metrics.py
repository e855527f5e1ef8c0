"""Prometheus metrics: request counts and latency histograms per route template.

A pure ASGI middleware (no per-request task switch as with ``BaseHTTPMiddleware``); each app has
its own registry so several apps (tests) can live in one process.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response


class MetricsMiddleware:
    def __init__(self, app, registry: CollectorRegistry) -> None:
        self.app = app
        self._paths: dict[int, str] | None = None
        self.requests = Counter(
            "earthplat_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "earthplat_http_request_duration_seconds",
            "HTTP request latency by method and route",
            ["method", "route"],
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def _template(self, scope) -> str:
        """The full path template of the matched route (``/api/v1/projects/{project_id}``)."""
        route = scope.get("route")
        if route is None:
            return "unmatched"
        if self._paths is None or id(route) not in self._paths:
            from fastapi.routing import iter_route_contexts

            app = scope.get("app")
            routes = getattr(app, "routes", [])
            self._paths = {id(c.original_route): c.path for c in iter_route_contexts(routes)}
        return self._paths.get(id(route)) or getattr(route, "path", None) or "unmatched"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def _send(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            path = self._template(scope)
            method = scope.get("method", "")
            self.requests.labels(method, path, str(status["code"])).inc()
            self.latency.labels(method, path).observe(time.perf_counter() - start)


def metrics_response(registry: CollectorRegistry) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
