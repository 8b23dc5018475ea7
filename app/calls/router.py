"""Call routes: the IVR's, the agents' and the supervisors'. Thin: check, call, return."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel

from app.calls import bounds, service
from app.calls.schemas import (
    AskedAgainIn,
    AskedAgainOut,
    AssignIn,
    CallbackIn,
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
from app.calls.states import CallState
from app.db import utcnow
from app.deps import CtxDep, CurrentUser, IvrUow, Supervisor, Uow
from app.errors import Invalid
from app.openapi import refusals
from app.routing import service as routing

router = APIRouter(prefix="/api", tags=["calls"])
CallId = Annotated[int, Path(ge=1, le=2_147_483_647)]


class Ok(BaseModel):
    ok: bool = True


# --- IVR ----------------------------------------------------------------------------------------


@router.post("/calls", response_model=CallCreated, status_code=status.HTTP_201_CREATED)
async def create_call(uow: IvrUow, body: CallCreate) -> CallCreated:
    call = await service.create(uow, data=body)
    return CallCreated(id=call.id, state=call.state, caller_known=call.caller_known)


@router.post("/calls/{call_id}/verify", response_model=VerifyOut, responses=refusals(409))
async def verify(uow: IvrUow, call_id: CallId, body: VerifyIn) -> VerifyOut:
    return await service.verify(uow, call_id=call_id, data=body)


@router.post(
    "/calls/{call_id}/steps",
    response_model=StepOut,
    status_code=status.HTTP_201_CREATED,
    responses=refusals(409),
)
async def add_step(uow: IvrUow, call_id: CallId, body: StepIn) -> StepOut:
    call = await service.get_locked(uow, call_id)
    return await service.add_step(uow, call=call, data=body)


@router.post("/calls/{call_id}/handoff", response_model=QueuedOut, responses=refusals(409))
async def handoff(uow: IvrUow, call_id: CallId, body: HandoffIn) -> QueuedOut:
    bounds.check_handoff(uow.ctx.settings, body)
    call = await service.get_locked(uow, call_id)
    return await service.handoff(uow, call=call, data=body)


@router.post("/calls/{call_id}/hangup", response_model=CallContext, responses=refusals(409))
async def hangup(uow: IvrUow, call_id: CallId) -> CallContext:
    call = await service.get_locked(uow, call_id)
    return await service.hangup(uow, call=call)


@router.post("/calls/{call_id}/survey", response_model=CallContext, responses=refusals(409))
async def survey(uow: IvrUow, call_id: CallId, body: SurveyIn) -> CallContext:
    call = await service.get_locked(uow, call_id)
    return await service.survey(uow, call=call, data=body)


@router.get("/calls/{call_id}/position", response_model=PositionOut)
async def position(uow: IvrUow, call_id: CallId) -> PositionOut:
    call = await service.get_locked(uow, call_id)
    return await service.position(uow, call=call)


@router.post("/calls/{call_id}/callback", response_model=CallContext, responses=refusals(409))
async def callback(uow: IvrUow, call_id: CallId, body: CallbackIn) -> CallContext:
    call = await service.get_locked(uow, call_id)
    return await service.request_callback(uow, call=call, data=body)


# --- agents (and supervisors) -------------------------------------------------------------------


@router.get("/calls", response_model=list[CallContext])
async def list_calls(
    uow: Uow,
    user: CurrentUser,
    state: Annotated[CallState | None, Query()] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    agent_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    since: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to")] = None,
) -> list[CallContext]:
    if since is not None and until is not None and since >= until:
        raise Invalid("'to' must come after 'from'", loc=("query", "to"))
    return await service.list_calls(
        uow, user=user, state=state, queue=queue, agent_id=agent_id, since=since, until=until
    )


@router.get("/calls/{call_id}", response_model=CallContext)
async def get_call(uow: Uow, user: CurrentUser, call_id: CallId) -> CallContext:
    call = await service.readable(uow, call_id=call_id, user=user)
    return await service.context.one(uow.session, call)


@router.post("/calls/{call_id}/accept", response_model=CallContext, responses=refusals(409))
async def accept(uow: Uow, user: CurrentUser, call_id: CallId) -> CallContext:
    call = await service.visible(uow, call_id=call_id, user=user)
    return await service.accept(uow, call=call, user=user)


@router.post("/calls/{call_id}/reject", response_model=CallContext, responses=refusals(409))
async def reject(uow: Uow, user: CurrentUser, call_id: CallId) -> CallContext:
    call = await service.visible(uow, call_id=call_id, user=user)
    return await service.reject(uow, call=call, user=user)


@router.post(
    "/calls/{call_id}/notes",
    response_model=NoteOut,
    status_code=status.HTTP_201_CREATED,
    responses=refusals(409),
)
async def add_note(uow: Uow, user: CurrentUser, call_id: CallId, body: NoteIn) -> NoteOut:
    bounds.check_note(uow.ctx.settings, body.text, "text")
    call = await service.visible(uow, call_id=call_id, user=user)
    return await service.add_note(uow, call=call, user=user, data=body)


@router.post(
    "/calls/{call_id}/asked-again",
    response_model=AskedAgainOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": AskedAgainOut}, **refusals(409)},
)
async def asked_again(
    uow: Uow, user: CurrentUser, call_id: CallId, body: AskedAgainIn, response: Response
) -> AskedAgainOut:
    """201 when recorded; 200 when this agent had recorded that field on the call already."""
    call = await service.visible(uow, call_id=call_id, user=user)
    entry, new = await service.asked_again(uow, call=call, user=user, data=body)
    if not new:
        response.status_code = status.HTTP_200_OK
    return entry


@router.post("/calls/{call_id}/called-back", response_model=CallContext, responses=refusals(409))
async def called_back(uow: Uow, user: CurrentUser, call_id: CallId) -> CallContext:
    call = await service.visible(uow, call_id=call_id, user=user)
    return await service.called_back(uow, call=call, user=user)


@router.post("/calls/{call_id}/transfer", response_model=CallContext, responses=refusals(409))
async def transfer(uow: Uow, user: CurrentUser, call_id: CallId, body: TransferIn) -> CallContext:
    bounds.check_note(uow.ctx.settings, body.note, "note")
    call = await service.visible(uow, call_id=call_id, user=user)
    return await service.transfer(uow, call=call, user=user, data=body)


@router.post("/calls/{call_id}/escalate", response_model=CallContext, responses=refusals(409))
async def escalate(uow: Uow, user: CurrentUser, call_id: CallId, body: EscalateIn) -> CallContext:
    call = await service.visible(uow, call_id=call_id, user=user)
    return await service.escalate(uow, call=call, user=user, reason=body.reason)


@router.post("/calls/{call_id}/wrap", response_model=CallContext, responses=refusals(409))
async def wrap(uow: Uow, user: CurrentUser, call_id: CallId, body: WrapIn) -> CallContext:
    bounds.check_note(uow.ctx.settings, body.notes, "notes")
    call = await service.visible(uow, call_id=call_id, user=user)
    return await service.wrap(uow, call=call, user=user, data=body)


# --- supervisors --------------------------------------------------------------------------------


@router.post("/calls/{call_id}/assign", response_model=CallContext, responses=refusals(409))
async def assign(uow: Uow, user: Supervisor, call_id: CallId, body: AssignIn) -> CallContext:
    call = await service.get_locked(uow, call_id)
    return await service.assign(uow, call=call, agent_id=body.agent_id, by=user)


@router.get("/escalations", response_model=list[EscalationOut])
async def escalations(uow: Uow, _: Supervisor) -> list[EscalationOut]:
    return await service.escalations(uow)


@router.get("/queues", response_model=list[QueueStats])
async def queues(ctx: CtxDep, uow: Uow, _: CurrentUser) -> list[QueueStats]:
    return await routing.queue_stats(uow, queues=sorted(ctx.flow.queues), now=utcnow())
