"""Sign-in, users and the agent's own status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.auth.service import create_token, hash_secret_async
from app.deps import CurrentUser, Supervisor, SupervisorOutside, Uow
from app.errors import Unauthorized
from app.openapi import refusals
from app.routing import service as routing
from app.users import service
from app.users.models import AgentStatus, Role
from app.users.schemas import AgentRead, StatusUpdate, Token, TokenUser, UserCreate, UserRead

router = APIRouter(prefix="/api", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.post("/auth/token", response_model=Token, responses=refusals(401, 429, 503))
async def token(
    uow: Uow, request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    client = request.client.host if request.client else None
    async with uow.ctx.signins.attempt(form.username, client) as attempt:
        user = await service.authenticate(uow, username=form.username, password=form.password)
        attempt.ok = user is not None
    if user is None:
        raise Unauthorized("wrong username or password")
    secret = uow.ctx.settings.secret_key
    assert secret is not None, "ensure_secrets sets it"
    access_token = create_token(
        secret.get_secret_value(),
        user_id=user.id,
        role=user.role,
        ttl_s=uow.ctx.settings.token_ttl_s,
        version=user.token_version,
    )
    return Token(access_token=access_token, user=TokenUser.model_validate(user))


@router.post("/auth/sign-out", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def sign_out(uow: Uow, user: CurrentUser) -> None:
    """End every token of the signed-in user and close their websockets, on every instance."""
    await service.sign_out(uow, user=user)


@router.post(
    "/users", response_model=UserRead, status_code=status.HTTP_201_CREATED, responses=refusals(409)
)
async def create_user(uow: Uow, by: SupervisorOutside, body: UserCreate) -> UserRead:
    service.check_skills(body.skills, uow.ctx.flow.queues)
    password_hash = await hash_secret_async(body.password)
    user = await service.create(uow.session, data=body, password_hash=password_hash, by=by)
    if user.role == Role.agent:
        # The supervisors' wall lists the new agent at once, signed out.
        uow.emit("agent.created", AgentRead.model_validate(user).model_dump(mode="json"))
    return UserRead.model_validate(user)


@router.get("/users", response_model=list[UserRead])
async def list_users(uow: Uow, _: Supervisor) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in await service.list_all(uow.session)]


@router.post("/users/{user_id}/disable", response_model=UserRead, responses=refusals(409))
async def disable_user(uow: Uow, by: Supervisor, user_id: UserId) -> UserRead:
    return UserRead.model_validate(await service.disable(uow, user_id=user_id, by=by))


@router.post("/users/{user_id}/enable", response_model=UserRead)
async def enable_user(uow: Uow, by: Supervisor, user_id: UserId) -> UserRead:
    return UserRead.model_validate(await service.enable(uow, user_id=user_id, by=by))


@router.get("/me", response_model=UserRead)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.put("/me/status", response_model=UserRead)
async def set_status(uow: Uow, user: CurrentUser, body: StatusUpdate) -> UserRead:
    changed = await routing.request_status(uow, user=user, status=AgentStatus(body.status))
    return UserRead.model_validate(changed)


@router.get("/agents", response_model=list[AgentRead])
async def list_agents(uow: Uow, _: CurrentUser) -> list[AgentRead]:
    return [AgentRead.model_validate(u) for u in await service.list_agents(uow.session)]
