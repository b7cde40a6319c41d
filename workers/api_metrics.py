"""The API's Prometheus metrics, served at ``GET /metrics``.

Each app owns its registry: the global default one would refuse a second app
in the same process (tests build many).  Labels are bounded on purpose: the
route *template*, never the path (which carries ids), and a fixed set of
methods, so no caller can mint new series.
"""

import time

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Receive, Scope, Send

#: The route label of a request no route matched (404s, probes of random paths).
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(scope: Scope) -> str:
    """The template of the route that took the request, on a wrong method too,
    or ``unmatched``."""
    route = scope.get("route")  # FastAPI's own routes say so
    if route is None and "endpoint" in scope:
        # Starlette's plain ones (/openapi.json) only leave their endpoint.
        routes = scope["app"].router.routes
        route = next((r for r in routes if getattr(r, "endpoint", None) is scope["endpoint"]), None)
    return getattr(route, "path", None) or UNMATCHED


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mailroom_api_requests",
            "API requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "mailroom_api_request_duration_seconds",
            "Time to answer an API request, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_of(scope)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route, method).observe(seconds)


class MetricsMiddleware:
    """Counts and times every HTTP request, from the first byte in to the last out."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the server answers if the app raises before starting one

        async def recording(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            self.metrics.observe(scope, status, time.perf_counter() - began)


def install(app: FastAPI) -> ApiMetrics:
    """Add the middleware and the ``/metrics`` route; add it last, so that it wraps
    the error handling and counts the status the client really got."""
    metrics = ApiMetrics()
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def scrape() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
