"""Call routes: the IVR's, the agents' and the supervisors'. Thin: check, call, return."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel

from app.calls import service
from app.calls.models import CallState
from app.calls.schemas import (
    AssignIn,
    CallContext,
    CallCreate,
    CallCreated,
    EscalateIn,
    EscalationOut,
    HandoffIn,
    NoteIn,
    NoteOut,
    PositionOut,
    QueuedOut,
    QueueStats,
    StepIn,
    StepOut,
    SurveyIn,
    TransferIn,
    VerifyIn,
    VerifyOut,
    WrapIn,
)
from app.db import utcnow
from app.deps import CtxDep, CurrentUser, IvrUnit, Supervisor, TxRoute, UnitDep
from app.routing import service as routing

router = APIRouter(prefix="/api", tags=["calls"], route_class=TxRoute)
CallId = Annotated[int, Path(ge=1, le=2_147_483_647)]


class Ok(BaseModel):
    ok: bool = True


# --- IVR ----------------------------------------------------------------------------------------


@router.post("/calls", response_model=CallCreated, status_code=status.HTTP_201_CREATED)
async def create_call(session: IvrUnit, body: CallCreate) -> CallCreated:
    call = await service.create(session, data=body)
    return CallCreated(id=call.id, state=call.state, caller_known=call.caller_known)


@router.post("/calls/{call_id}/verify", response_model=VerifyOut)
async def verify(session: IvrUnit, call_id: CallId, body: VerifyIn) -> VerifyOut:
    call = await service.get_locked(session, call_id)
    return await service.verify(session, call=call, data=body)


@router.post("/calls/{call_id}/steps", response_model=StepOut, status_code=status.HTTP_201_CREATED)
async def add_step(session: IvrUnit, call_id: CallId, body: StepIn) -> StepOut:
    call = await service.get_locked(session, call_id)
    return await service.add_step(session, call=call, data=body)


@router.post("/calls/{call_id}/handoff", response_model=QueuedOut)
async def handoff(session: IvrUnit, call_id: CallId, body: HandoffIn) -> QueuedOut:
    call = await service.get_locked(session, call_id)
    return await service.handoff(session, call=call, data=body)


@router.post("/calls/{call_id}/hangup", response_model=CallContext)
async def hangup(session: IvrUnit, call_id: CallId) -> CallContext:
    call = await service.get_locked(session, call_id)
    return await service.hangup(session, call=call)


@router.post("/calls/{call_id}/survey", response_model=CallContext)
async def survey(session: IvrUnit, call_id: CallId, body: SurveyIn) -> CallContext:
    call = await service.get_locked(session, call_id)
    return await service.survey(session, call=call, data=body)


@router.get("/calls/{call_id}/position", response_model=PositionOut)
async def position(session: IvrUnit, call_id: CallId) -> PositionOut:
    call = await service.get_locked(session, call_id)
    return await service.position(session, call=call)


# --- agents (and supervisors) -------------------------------------------------------------------


@router.get("/calls", response_model=list[CallContext])
async def list_calls(
    session: UnitDep,
    user: CurrentUser,
    state: Annotated[CallState | None, Query()] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
) -> list[CallContext]:
    return await service.list_calls(
        session, user=user, state=state.value if state else None, queue=queue
    )


@router.get("/calls/{call_id}", response_model=CallContext)
async def get_call(session: UnitDep, user: CurrentUser, call_id: CallId) -> CallContext:
    call = await service.visible(session, call_id=call_id, user=user)
    return await service.context.one(session, call)


@router.post("/calls/{call_id}/accept", response_model=CallContext)
async def accept(session: UnitDep, user: CurrentUser, call_id: CallId) -> CallContext:
    call = await service.visible(session, call_id=call_id, user=user)
    return await service.accept(session, call=call, user=user)


@router.post("/calls/{call_id}/reject", response_model=CallContext)
async def reject(session: UnitDep, user: CurrentUser, call_id: CallId) -> CallContext:
    call = await service.visible(session, call_id=call_id, user=user)
    return await service.reject(session, call=call, user=user)


@router.post("/calls/{call_id}/notes", response_model=NoteOut, status_code=status.HTTP_201_CREATED)
async def add_note(session: UnitDep, user: CurrentUser, call_id: CallId, body: NoteIn) -> NoteOut:
    call = await service.visible(session, call_id=call_id, user=user)
    return await service.add_note(session, call=call, user=user, data=body)


@router.post("/calls/{call_id}/transfer", response_model=CallContext)
async def transfer(
    session: UnitDep, user: CurrentUser, call_id: CallId, body: TransferIn
) -> CallContext:
    call = await service.visible(session, call_id=call_id, user=user)
    return await service.transfer(session, call=call, user=user, data=body)


@router.post("/calls/{call_id}/escalate", response_model=CallContext)
async def escalate(
    session: UnitDep, user: CurrentUser, call_id: CallId, body: EscalateIn
) -> CallContext:
    call = await service.visible(session, call_id=call_id, user=user)
    return await service.escalate(session, call=call, user=user, reason=body.reason)


@router.post("/calls/{call_id}/wrap", response_model=CallContext)
async def wrap(session: UnitDep, user: CurrentUser, call_id: CallId, body: WrapIn) -> CallContext:
    call = await service.visible(session, call_id=call_id, user=user)
    return await service.wrap(session, call=call, user=user, data=body)


# --- supervisors --------------------------------------------------------------------------------


@router.post("/calls/{call_id}/assign", response_model=CallContext)
async def assign(session: UnitDep, _: Supervisor, call_id: CallId, body: AssignIn) -> CallContext:
    call = await service.get_locked(session, call_id)
    return await service.assign(session, call=call, agent_id=body.agent_id)


@router.get("/escalations", response_model=list[EscalationOut])
async def escalations(session: UnitDep, _: Supervisor) -> list[EscalationOut]:
    return await service.escalations(session)


@router.get("/queues", response_model=list[QueueStats])
async def queues(ctx: CtxDep, session: UnitDep, _: CurrentUser) -> list[QueueStats]:
    return await routing.queue_stats(session, queues=sorted(ctx.flow.queues), now=utcnow())


# A router's routes are tried in order, and FastAPI (0.165) goes through them twice per request,
# to pick the router and then the route. The four of every call's lifecycle go first: their
# paths overlap no other route's, so the order changes what is matched for none.
_LIFECYCLE = (
    ("POST", "/api/calls"),
    ("POST", "/api/calls/{call_id}/handoff"),
    ("POST", "/api/calls/{call_id}/accept"),
    ("POST", "/api/calls/{call_id}/wrap"),
)


def _lifecycle_first(route: object) -> int:
    methods = getattr(route, "methods", None) or ()
    path = getattr(route, "path", "")
    for rank, (method, hot) in enumerate(_LIFECYCLE):
        if path == hot and method in methods:
            return rank
    return len(_LIFECYCLE)


router.routes.sort(key=_lifecycle_first)
