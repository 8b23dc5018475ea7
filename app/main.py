"""create_app(): the API, the websockets and the console on one port.

The lifespan builds the engine, sessions, bus, websocket hub and routing loop; nothing is made
at import time. The schema is migrated before the server's event loop starts (app/cli.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

import console
from app import __version__, errors
from app.audit.router import router as audit_router
from app.calls.router import router as calls_router
from app.config import Settings, ensure_secrets, get_settings
from app.context import AppContext
from app.customers.router import router as customers_router
from app.db import checkpoint_wal_forever
from app.deps import bearer, get_uow
from app.headers import SecurityHeaders
from app.limits import BodyLimit
from app.logs import RequestIdMiddleware
from app.metrics.middleware import RequestLatency
from app.metrics.router import router as metrics_router
from app.metrics.service import Metrics
from app.openapi import document_errors
from app.promises.router import router as promises_router
from app.realtime.bus import make_bus
from app.realtime.hub import Hub
from app.realtime.router import router as ws_router
from app.reports.rollup import roll_up_forever
from app.reports.router import router as reports_router
from app.routing.dispatcher import Dispatcher
from app.users.router import router as users_router
from app.voice.router import router as voice_router
from ivr.flow import load_flow

log = logging.getLogger("tellonce")

CONSOLE = Path(console.__file__).parent


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = ensure_secrets(settings or get_settings())
    # Made per app, not per process: each app (each instance, each test's) serves its own series.
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.build(settings, load_flow(settings.flow))
        ctx.metrics = metrics
        ctx.bus = make_bus(settings.redis_url)
        await ctx.bus.connect()
        ctx.hub = hub = Hub(ctx)
        ctx.dispatcher = dispatcher = Dispatcher(ctx)
        app.state.ctx = ctx
        await hub.start()
        await dispatcher.start()
        path = settings.sqlite_path()
        checkpoints = (
            None
            if path is None
            else asyncio.create_task(checkpoint_wal_forever(str(path)), name="wal-checkpoint")
        )
        rollups = asyncio.create_task(roll_up_forever(ctx), name="report-rollups")
        try:
            yield
        finally:
            rollups.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rollups
            if checkpoints is not None:
                checkpoints.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checkpoints
            await dispatcher.stop()
            await hub.stop()
            await ctx.bus.disconnect()
            await ctx.dispose()

    app = FastAPI(
        title="Tellonce",
        version=__version__,
        summary="The caller says it once, to the phone tree; every agent after that knows.",
        lifespan=lifespan,
        # /docs is served below from the package's own copy of Swagger UI, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    # The last added runs first: a body is bounded before anything else, and every answer,
    # a refusal included, gets the security headers.
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    app.add_middleware(SecurityHeaders)
    # Outside the body limit, so that a refused body is timed too.
    app.add_middleware(RequestLatency, metrics=metrics)
    app.include_router(calls_router)
    app.include_router(users_router)
    app.include_router(customers_router)
    app.include_router(ws_router)
    app.include_router(audit_router)
    app.include_router(promises_router)
    app.include_router(reports_router)
    app.include_router(metrics_router)
    app.include_router(voice_router)
    document_errors(
        app,
        [
            calls_router,
            users_router,
            customers_router,
            audit_router,
            promises_router,
            reports_router,
        ],
        credential=bearer,
        database=get_uow,
    )
    # Added last, so outermost: whatever answers, the request's log lines and its answer carry
    # the one id. Keep it the last middleware added.
    app.add_middleware(RequestIdMiddleware)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        """The API reference: Swagger UI from the package's own copy, started by a script file
        rather than FastAPI's inline one, so that the Content-Security-Policy holds here too."""
        return FileResponse(CONSOLE / "docs.html")

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        ctx: AppContext = app.state.ctx
        checks = {"database": False, "bus": False}
        try:
            async with ctx.reading() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception:
            log.warning("readiness: database unreachable")
        if ctx.bus is not None:
            checks["bus"] = await ctx.bus.ping()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    app.mount("/", StaticFiles(directory=CONSOLE, html=True), name="console")
    return app
