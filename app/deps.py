"""Request dependencies as Annotated aliases: SessionDep, UnitDep, CurrentUser, Supervisor,
IvrUnit."""

from __future__ import annotations

import functools
import hmac
import inspect
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.openapi.models import SecurityScheme
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import decode_token
from app.context import AppContext
from app.db import Unit, commit
from app.errors import Forbidden, Unauthorized
from app.sql import Db
from app.users import repository as users
from app.users.models import Role
from app.users.repository import UserRow

# How the routes authenticate, as the OpenAPI document names it (bearer_in_openapi).
BEARER = "HTTPBearer"
_BEARER_SCHEME = HTTPBearer(auto_error=False, description="A user token, or the IVR key")
# Every /api route needs a bearer token but these.
PUBLIC_API = frozenset({"/api/auth/token"})


async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


class TransactionRoute(APIRoute):
    """A route whose request owns one transaction: committed when the route's function has
    returned, before its answer is serialised, and rolled back on any error, so that bad input
    changes nothing.

    The route's handler is wrapped here rather than through a dependency with `yield`: FastAPI's
    exit stack and shielded exit for those cost some 50 us on every request. The commit is in
    the route's function itself (wrapped at registration), so that the events it publishes go
    out before FastAPI validates and serialises the response (10 us of a handoff). The
    transaction is an ORM session, for the routes whose services use the ORM.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _committing(endpoint), **kwargs)

    async def begin(self, ctx: AppContext) -> Unit:
        return ctx.new_session()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def in_transaction(request: Request) -> Response:
            unit = await self.begin(request.app.state.ctx)
            request.scope[_UNIT] = unit
            uncommitted = [unit]
            token = _UNCOMMITTED.set(uncommitted)
            try:
                response = await handle(request)
                if uncommitted:
                    await commit(uncommitted.pop())
            except BaseException:
                # Also when a hook before the commit fails: a Tx holds its pooled connection
                # until it ends, and on SQLite that is the one connection.
                await unit.rollback()
                raise
            finally:
                _UNCOMMITTED.reset(token)
                if isinstance(unit, AsyncSession):
                    await unit.close()
            return response

        return in_transaction


# The request's transaction while its route's function runs, until that commits it.
_UNCOMMITTED: ContextVar[list[Unit]] = ContextVar("tellonce_uncommitted")


def _committing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The route's function, then the commit of the request's transaction. FastAPI reads the
    parameters through the wrapper (functools.wraps); a function that is not a coroutine
    function runs in FastAPI's thread pool and is committed after it, by in_transaction."""
    if not inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def and_commit(*args: Any, **kwargs: Any) -> Any:
        result = await endpoint(*args, **kwargs)
        uncommitted = _UNCOMMITTED.get(None)
        if uncommitted:
            await commit(uncommitted.pop())
        return result

    return and_commit


class TxRoute(TransactionRoute):
    """A TransactionRoute whose transaction is a Tx: for the routes that use Db alone."""

    async def begin(self, ctx: AppContext) -> Unit:
        return await ctx.begin()


_UNIT = "tellonce.unit"


async def get_unit(request: Request) -> Unit:
    """The request's transaction, whichever kind its route opened."""
    unit: Unit = request.scope[_UNIT]
    return unit


async def get_session(request: Request) -> AsyncSession:
    """The request's ORM session (its route is a TransactionRoute)."""
    session = request.scope[_UNIT]
    assert isinstance(session, AsyncSession), "an ORM session on a TxRoute"
    return session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
UnitDep = Annotated[Unit, Depends(get_unit)]


def _token(request: Request) -> str | None:
    """The bearer token of the request, read as fastapi.security.HTTPBearer reads it."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


def _is_ivr_key(ctx: AppContext, token: str) -> bool:
    key = ctx.settings.ivr_api_key
    return key is not None and hmac.compare_digest(token.encode(), key.get_secret_value().encode())


async def _user_from_token(ctx: AppContext, session: Unit, token: str) -> UserRow | None:
    assert ctx.settings.secret_key is not None
    user_id = decode_token(ctx.settings.secret_key.get_secret_value(), token)
    return None if user_id is None else await users.get(await Db.of(session), user_id)


# The authenticating dependencies take the request itself, not the session's dependency and
# HTTPBearer's: each dependency FastAPI solves costs time on every request (FastAPI 0.165: 7.5
# us in a tight loop on a fast machine, 30 to 45 us measured in a server three times slower).
# The bearer scheme is still in the OpenAPI document (bearer_in_openapi).
async def get_current_user(request: Request) -> UserRow:
    token = _token(request)
    if token is None:
        raise Unauthorized("not authenticated")
    session: Unit = request.scope[_UNIT]
    ctx: AppContext = session.info["ctx"]
    if _is_ivr_key(ctx, token):
        raise Forbidden("the IVR key may only use the IVR routes")
    user = await _user_from_token(ctx, session, token)
    if user is None:
        raise Unauthorized("invalid or expired token")
    return user


CurrentUser = Annotated[UserRow, Depends(get_current_user)]


async def get_supervisor(user: CurrentUser) -> UserRow:
    if user.role != Role.supervisor:
        raise Forbidden("supervisors only")
    return user


Supervisor = Annotated[UserRow, Depends(get_supervisor)]


async def ivr_unit(request: Request) -> Unit:
    """The request's transaction, once its bearer token is the IVR key."""
    token = _token(request)
    if token is None:
        raise Unauthorized("not authenticated")
    session: Unit = request.scope[_UNIT]
    ctx: AppContext = session.info["ctx"]
    if _is_ivr_key(ctx, token):
        return session
    if await _user_from_token(ctx, session, token) is not None:
        raise Forbidden("IVR routes take the IVR key, not a user token")
    raise Unauthorized("invalid IVR key")


# The IVR routes' one dependency: their transaction, for the IVR alone.
IvrUnit = Annotated[Unit, Depends(ivr_unit)]


def bearer_in_openapi(app: FastAPI) -> None:
    """Name the bearer scheme in the OpenAPI document, on every /api route that needs it, as
    FastAPI does for a route that depends on HTTPBearer (ours read the header themselves)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            model: SecurityScheme = _BEARER_SCHEME.model
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[BEARER] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
            for path, operations in schema.get("paths", {}).items():
                if path.startswith("/api/") and path not in PUBLIC_API:
                    for operation in operations.values():
                        operation["security"] = [{BEARER: []}]
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
