"""Sign-in, users and the agent's own status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from app.auth.service import create_token
from app.deps import CtxDep, CurrentUser, SessionDep, Supervisor, TransactionRoute
from app.errors import Unauthorized
from app.routing import service as routing
from app.users import service
from app.users.schemas import AgentRead, StatusUpdate, Token, TokenUser, UserCreate, UserRead

router = APIRouter(prefix="/api", tags=["users"], route_class=TransactionRoute)


@router.post("/auth/token", response_model=Token)
async def token(
    ctx: CtxDep, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    user = await service.authenticate(session, username=form.username, password=form.password)
    if user is None:
        raise Unauthorized("wrong username or password")
    assert ctx.settings.secret_key is not None
    access_token = create_token(
        ctx.settings.secret_key.get_secret_value(),
        user_id=user.id,
        role=user.role,
        ttl_s=ctx.settings.token_ttl_s,
    )
    return Token(access_token=access_token, user=TokenUser.model_validate(user))


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED)
async def create_user(session: SessionDep, _: Supervisor, body: UserCreate) -> UserRead:
    return UserRead.model_validate(await service.create(session, data=body))


@router.get("/users", response_model=list[UserRead])
async def list_users(session: SessionDep, _: Supervisor) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in await service.list_all(session)]


@router.get("/me", response_model=UserRead)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.put("/me/status", response_model=UserRead)
async def set_status(session: SessionDep, user: CurrentUser, body: StatusUpdate) -> UserRead:
    return UserRead.model_validate(
        await routing.request_status(session, user=user, status=body.status)
    )


@router.get("/agents", response_model=list[AgentRead])
async def list_agents(session: SessionDep, _: CurrentUser) -> list[AgentRead]:
    return [AgentRead.model_validate(u) for u in await service.list_agents(session)]
