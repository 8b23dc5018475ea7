"""HTTP request latency per route template: the matched route's path ("/api/calls/{call_id}"),
never the raw path, so that the series stay as few as the routes."""

from __future__ import annotations

import time

from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from app.metrics.service import Metrics

# A request no route matched (a 404 of the router, a refusal before routing).
UNMATCHED = "unmatched"


class RequestLatency:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.requests.labels(scope["method"], route_template(scope)).observe(
                time.perf_counter() - start
            )


def route_template(scope: Scope) -> str:
    # The router records the route it matched in the request's scope.
    route = scope.get("route")
    if isinstance(route, Mount):
        return route.path + "/{path}"
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
