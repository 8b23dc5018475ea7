"""GET /metrics: this instance's series in the Prometheus text format, for a scraper holding
TELLONCE_METRICS_TOKEN."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST

from app.deps import CtxDep
from app.errors import NotFound, Unauthorized
from app.metrics import service
from app.openapi import refusals

router = APIRouter(tags=["health"])

scraper = HTTPBearer(
    auto_error=False, scheme_name="MetricsToken", description="TELLONCE_METRICS_TOKEN"
)

_TEXT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/plain": {"schema": {"type": "string"}}},
        "description": "The Prometheus text format",
    },
    **refusals(401, 404, 503),
}


@router.get("/metrics", response_class=Response, responses=_TEXT)
async def metrics(
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scraper)],
) -> Response:
    token = ctx.settings.metrics_token
    if token is None or ctx.metrics is None:
        # Off unless asked for: a scraper's token is the only credential it takes.
        raise NotFound("metrics are off: set TELLONCE_METRICS_TOKEN to serve them")
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise Unauthorized("a bearer token equal to TELLONCE_METRICS_TOKEN is needed")
    body = ctx.metrics.render(await service.snapshot(ctx))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
