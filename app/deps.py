"""Request dependencies as Annotated aliases: SessionDep, CurrentUser, Supervisor, IvrKey."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import decode_token
from app.context import AppContext
from app.db import commit
from app.errors import Forbidden, Unauthorized
from app.sql import Db
from app.users import repository as users
from app.users.models import Role
from app.users.repository import UserRow

_bearer = HTTPBearer(auto_error=False, description="A user token, or the IVR key")


async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


async def get_session(ctx: CtxDep) -> AsyncIterator[AsyncSession]:
    # The request owns the transaction: it commits when the route returns, before the response
    # is sent (scope="function"), and rolls back on any error, so bad input changes nothing.
    async with ctx.new_session() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await commit(session)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _is_ivr_key(ctx: AppContext, token: str) -> bool:
    key = ctx.settings.ivr_api_key
    return key is not None and hmac.compare_digest(token.encode(), key.get_secret_value().encode())


async def _user_from_token(ctx: AppContext, session: AsyncSession, token: str) -> UserRow | None:
    assert ctx.settings.secret_key is not None
    user_id = decode_token(ctx.settings.secret_key.get_secret_value(), token)
    return None if user_id is None else await users.get(await Db.of(session), user_id)


async def get_current_user(ctx: CtxDep, session: SessionDep, creds: Credentials) -> UserRow:
    if creds is None:
        raise Unauthorized("not authenticated")
    if _is_ivr_key(ctx, creds.credentials):
        raise Forbidden("the IVR key may only use the IVR routes")
    user = await _user_from_token(ctx, session, creds.credentials)
    if user is None:
        raise Unauthorized("invalid or expired token")
    return user


CurrentUser = Annotated[UserRow, Depends(get_current_user)]


async def get_supervisor(user: CurrentUser) -> UserRow:
    if user.role != Role.supervisor:
        raise Forbidden("supervisors only")
    return user


Supervisor = Annotated[UserRow, Depends(get_supervisor)]


async def require_ivr(ctx: CtxDep, session: SessionDep, creds: Credentials) -> None:
    if creds is None:
        raise Unauthorized("not authenticated")
    if _is_ivr_key(ctx, creds.credentials):
        return
    if await _user_from_token(ctx, session, creds.credentials) is not None:
        raise Forbidden("IVR routes take the IVR key, not a user token")
    raise Unauthorized("invalid IVR key")


IvrKey = Annotated[None, Depends(require_ivr)]
