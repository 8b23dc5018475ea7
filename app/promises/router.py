"""Promise routes: mark one kept; the open and overdue ones for supervisors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.deps import CurrentUser, Supervisor, Uow
from app.openapi import refusals
from app.promises import service
from app.promises.schemas import PromiseOut

router = APIRouter(prefix="/api/promises", tags=["promises"])
PromiseId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get("", response_model=list[PromiseOut])
async def list_promises(
    uow: Uow, _: Supervisor, overdue: Annotated[bool, Query()] = False
) -> list[PromiseOut]:
    return await service.listed(uow.session, overdue=overdue)


@router.post("/{promise_id}/kept", response_model=PromiseOut, responses=refusals(409))
async def keep_promise(uow: Uow, user: CurrentUser, promise_id: PromiseId) -> PromiseOut:
    return await service.keep(uow.session, promise_id=promise_id, user=user)
