"""One error family, rendered as JSON {"detail": ...} with its status; nothing answers 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.headers import SECURITY_HEADERS

log = logging.getLogger("tellonce")


class TellonceError(Exception):
    status_code = 400

    def __init__(self, detail: str, *, status_code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code


class BadRequest(TellonceError):
    status_code = 400


class Unauthorized(TellonceError):
    status_code = 401


class Forbidden(TellonceError):
    status_code = 403


class NotFound(TellonceError):
    status_code = 404


class Conflict(TellonceError):
    status_code = 409


class Invalid(TellonceError):
    status_code = 422


def install(app: FastAPI) -> None:
    @app.exception_handler(TellonceError)
    async def _tellonce(request: Request, exc: TellonceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22, "data exception": the database refused a value the request carried
        # (on PostgreSQL, text holding U+0000 is one). The transaction was rolled back.
        if exc.connection_invalidated:
            # The database dropped a pooled connection (a restart, a failover): the pool has
            # discarded it and the next request gets a fresh one. Nothing was committed.
            log.warning("database connection lost on %s %s", request.method, request.url.path)
            return JSONResponse(
                {"detail": "the database connection was lost; try again"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return JSONResponse(
                {"detail": "a value in the request cannot be stored (text may not hold U+0000)"},
                status_code=422,
            )
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        # Sent from outside the app's middleware (Starlette's ServerErrorMiddleware), so
        # SecurityHeaders never sees it.
        return JSONResponse(
            {"detail": "internal error"}, status_code=500, headers=dict(SECURITY_HEADERS)
        )
