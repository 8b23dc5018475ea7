"""create_app(): the API, the websockets and the console on one port.

The lifespan builds the engine, sessions, bus, websocket hub and routing loop; nothing is made
at import time. The schema is migrated before the server's event loop starts (app/cli.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from sqlalchemy import text

import console
from app import __version__, errors
from app.calls.router import router as calls_router
from app.config import Settings, ensure_secrets, get_settings
from app.context import AppContext
from app.customers.router import router as customers_router
from app.deps import bearer_in_openapi
from app.realtime.bus import make_bus
from app.realtime.hub import Hub
from app.realtime.router import router as ws_router
from app.routing.dispatcher import Dispatcher
from app.users.router import router as users_router
from ivr.flow import load_flow

log = logging.getLogger("tellonce")


NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = ensure_secrets(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.build(settings, load_flow(settings.flow))
        ctx.bus = make_bus(settings.redis_url)
        await ctx.bus.connect()
        hub = Hub(ctx)
        dispatcher = Dispatcher(ctx)
        ctx.wake_router = dispatcher.kick
        ctx.deliver_local = hub.deliver
        ctx.announce = hub.announce
        app.state.ctx = ctx
        app.state.hub = hub
        if ctx.checkpointer is not None:
            await ctx.checkpointer.start()
        await hub.start()
        await dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()
            await hub.stop()
            if ctx.checkpointer is not None:
                await ctx.checkpointer.stop()
            await ctx.bus.disconnect()
            await ctx.dispose()

    app = FastAPI(
        title="Tellonce",
        version=__version__,
        summary="The caller says it once, to the phone tree; every agent after that knows.",
        lifespan=lifespan,
        # No OpenTelemetry here: with its hooks on, FastAPI looks for providers and reads the
        # environment on every request (some 15 us each, measured on FastAPI 0.165).
        telemetry=NO_TELEMETRY,
    )
    errors.install(app)
    bearer_in_openapi(app)
    # Routes are matched in order: the call lifecycle's, the busiest, first.
    app.include_router(calls_router)
    app.include_router(users_router)
    app.include_router(customers_router)
    app.include_router(ws_router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        ctx: AppContext = app.state.ctx
        checks = {"database": False, "bus": False}
        try:
            async with ctx.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
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

    app.mount("/", StaticFiles(directory=Path(console.__file__).parent, html=True), name="console")
    return app
