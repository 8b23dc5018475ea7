"""Request dependencies as Annotated aliases: Uow, CurrentUser, Supervisor, SupervisorOutside,
IvrUow, CtxDep."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.service import accepts, read_token
from app.context import AppContext
from app.db import DbSession
from app.errors import Forbidden, Unauthorized
from app.uow import UnitOfWork
from app.users import repository as users
from app.users.models import Role, User

bearer = HTTPBearer(auto_error=False, description="A user token, or the IVR key")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


async def get_uow(ctx: CtxDep) -> AsyncIterator[UnitOfWork]:
    """The request's unit of work: committed when the route's function has returned (before
    the response is sent), rolled back on any error, so that bad input changes nothing."""
    async with ctx.database.session() as session:
        uow = UnitOfWork(ctx, session)
        try:
            yield uow
        except BaseException:
            await uow.rollback()
            raise
        await uow.commit()


# scope="function": the commit runs as the route's function returns, before the response is
# sent, so that a client that has its answer finds the change made.
Uow = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


def _is_ivr_key(ctx: AppContext, token: str) -> bool:
    key = ctx.settings.ivr_api_key
    return key is not None and hmac.compare_digest(token.encode(), key.get_secret_value().encode())


async def _user_from_token(ctx: AppContext, session: DbSession, token: str) -> User | None:
    """The token's user, unless it is forged, expired or revoked (a sign-out, a disable): the
    user row is read anyway, so the revocation check costs nothing more."""
    secret = ctx.settings.secret_key
    assert secret is not None, "ensure_secrets sets it"
    claims = read_token(secret.get_secret_value(), token)
    if claims is None:
        return None
    user = await users.get(session, claims.user_id)
    return user if user is not None and accepts(user, claims.version) else None


async def _signed_in(ctx: AppContext, session: DbSession, credentials: Credentials) -> User:
    if credentials is None:
        raise Unauthorized("not authenticated")
    if _is_ivr_key(ctx, credentials.credentials):
        raise Forbidden("the IVR key may only use the IVR routes")
    user = await _user_from_token(ctx, session, credentials.credentials)
    if user is None:
        raise Unauthorized("invalid or expired token")
    return user


async def get_current_user(uow: Uow, credentials: Credentials) -> User:
    """The signed-in user, read in the request's transaction."""
    return await _signed_in(uow.ctx, uow.session, credentials)


CurrentUser = Annotated[User, Depends(get_current_user)]


def _supervisor(user: User) -> User:
    if user.role != Role.supervisor:
        raise Forbidden("supervisors only")
    return user


async def get_supervisor(user: CurrentUser) -> User:
    return _supervisor(user)


Supervisor = Annotated[User, Depends(get_supervisor)]


async def get_supervisor_outside(uow: Uow, credentials: Credentials) -> User:
    """The signed-in supervisor, read before the request's transaction begins: for routes that
    hash a password or a PIN first, with no transaction held meanwhile."""
    async with uow.outside() as session:
        return _supervisor(await _signed_in(uow.ctx, session, credentials))


SupervisorOutside = Annotated[User, Depends(get_supervisor_outside)]


async def get_ivr_uow(uow: Uow, credentials: Credentials) -> UnitOfWork:
    """The request's unit of work, once its bearer token is the IVR key (no database read)."""
    if credentials is None:
        raise Unauthorized("not authenticated")
    if _is_ivr_key(uow.ctx, credentials.credentials):
        return uow
    if await _user_from_token(uow.ctx, uow.session, credentials.credentials) is not None:
        raise Forbidden("IVR routes take the IVR key, not a user token")
    raise Unauthorized("invalid IVR key")


IvrUow = Annotated[UnitOfWork, Depends(get_ivr_uow)]
