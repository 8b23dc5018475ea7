"""One error family, rendered as JSON {"detail": ...} with its status; nothing answers 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.headers import SECURITY_HEADERS

log = logging.getLogger("tellonce")


class TellonceError(Exception):
    status_code = 400

    def __init__(
        self, detail: str, *, status_code: int | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code
        # Whole seconds, sent as Retry-After: when asking again can succeed.
        self.retry_after = retry_after

    def body(self) -> dict[str, object]:
        return {"detail": self.detail}


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
    """A value well formed but naming nothing here (an unknown queue, say): answered 422 in the
    shape of every other validation error, at loc (where in the request the value was)."""

    status_code = 422

    def __init__(self, detail: str, *, loc: tuple[str | int, ...] = ("body",)) -> None:
        super().__init__(detail)
        self.loc = loc

    def body(self) -> dict[str, object]:
        return {"detail": problems(self.loc, self.detail)}


def problems(loc: tuple[str | int, ...], msg: str, kind: str = "value_error") -> list[object]:
    """The detail of a 422: one problem, as the framework's own validation errors give it."""
    return [{"loc": list(loc), "msg": msg, "type": kind}]


def _try_again(request: Request, detail: str) -> JSONResponse:
    """503 with Retry-After for a fault that passes by itself; nothing was committed."""
    log.warning("%s: %s %s", detail.split(";")[0], request.method, request.url.path)
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})


class TooManyRequests(TellonceError):
    status_code = 429


class Unavailable(TellonceError):
    status_code = 503


def install(app: FastAPI) -> None:
    @app.exception_handler(TellonceError)
    async def _tellonce(request: Request, exc: TellonceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)

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
        if exc.connection_invalidated:
            # The database dropped a pooled connection (a restart, a failover): the pool has
            # discarded it and the next request gets a fresh one. Nothing was committed.
            return _try_again(request, "the database connection was lost; try again")
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        # Class 08, "connection exception", and 57P0x, a server shutting down or starting up;
        # on SQLite, a write lock held past the busy timeout. Each passes: try again.
        if isinstance(sqlstate, str) and sqlstate.startswith(("08", "57P0")):
            return _try_again(request, "the database could not be reached; try again")
        if "database is locked" in str(exc.orig):
            return _try_again(request, "the database is busy; try again")
        # SQLSTATE class 22, "data exception": the database refused a value the request carried
        # (on PostgreSQL, text holding U+0000 is one). The transaction was rolled back.
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            why = "a value in the request cannot be stored (text may not hold U+0000)"
            return JSONResponse({"detail": problems(("body",), why)}, status_code=422)
        return await _unexpected(request, exc)

    @app.exception_handler(OSError)
    async def _unreachable(request: Request, exc: OSError) -> JSONResponse:
        # A connection the database refused, reset or let time out while the pool opened it
        # (the database down, restarting, or cut off): nothing was done; it passes by itself.
        return _try_again(request, "the database could not be reached; try again")

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
        return _try_again(request, "the server is busy; try again")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        # Sent from outside the app's middleware (Starlette's ServerErrorMiddleware), so
        # SecurityHeaders never sees it.
        return JSONResponse(
            {"detail": "internal error"}, status_code=500, headers=dict(SECURITY_HEADERS)
        )
