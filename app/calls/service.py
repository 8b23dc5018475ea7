"""The call lifecycle: the IVR's handoff, the agents' actions and the supervisors' assignments.

Each function runs in the caller's transaction, locks the rows it judges, and writes the events
the change causes to the outbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.auth.service import verify_secret_async
from app.calls import context
from app.calls import repository as calls
from app.calls.models import ESCALATIONS, FINAL_STATES, CallState
from app.calls.repository import ACTIVE, CallRow
from app.calls.schemas import (
    CallContext,
    CallCreate,
    EscalationOut,
    HandoffIn,
    NoteIn,
    NoteOut,
    Person,
    PositionOut,
    QueuedOut,
    StepIn,
    StepOut,
    SurveyIn,
    TransferIn,
    VerifyIn,
    VerifyOut,
    WrapIn,
)
from app.context import AppContext
from app.db import Unit, utcnow
from app.errors import Conflict, Invalid, NotFound
from app.realtime.outbox import RawJson, emit
from app.routing import service as routing
from app.sql import Db, Sql
from app.users import repository as users
from app.users.models import AgentStatus, Role
from app.users.repository import UserRow

MAX_TRIES = 3
LOCK_WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)
LIST_LIMIT = 500


def _ctx(session: Unit) -> AppContext:
    ctx: AppContext = session.info["ctx"]
    return ctx


async def _publish(
    session: Unit, type_: str, call: CallRow, *, agent: bool = True, to: int | None = None
) -> None:
    """An event carrying the call context, to the supervisors and to its agent (or to `to`)."""
    data = RawJson((await context.one(session, call)).model_dump_json())
    emit(session, type_, data, user_id=to if to is not None else (call.agent_id if agent else None))


# --- lookups and rights ---------------------------------------------------------------------


async def get_locked(session: Unit, call_id: int) -> CallRow:
    call = await routing.lock_call(session, call_id)
    if call is None:
        raise NotFound("call not found")
    return call


async def visible(session: Unit, *, call_id: int, user: UserRow) -> CallRow:
    """The call, locked, if the user may see it: supervisors all, agents those ever theirs."""
    call = await routing.lock_call(session, call_id)
    if call is None:
        raise NotFound("call not found")
    if (
        user.role != Role.supervisor
        and call.agent_id != user.id
        and not await calls.seen_by(await Db.of(session), call_id=call.id, agent_id=user.id)
    ):
        raise NotFound("call not found")
    return call


def _require_mine(call: CallRow, user: UserRow, *states: str) -> None:
    if call.agent_id != user.id or call.state not in states:
        raise Conflict(
            f"the call is {call.state}" + ("" if call.agent_id == user.id else " and not yours")
        )


# --- the IVR's routes -------------------------------------------------------------------------


_MATCH_PHONE = Sql(
    """
    SELECT c.id, c.language, c.segment FROM customers c
    JOIN customer_phones p ON p.customer_id = c.id
    WHERE p.number = :number ORDER BY c.id LIMIT 1
    """
)


async def create(session: Unit, *, data: CallCreate) -> CallRow:
    languages = _ctx(session).flow.languages
    if data.language is not None and data.language not in languages:
        raise Invalid(f"language must be one of {', '.join(languages)}")
    db = await Db.of(session)
    # The caller number matched to a customer: a hint for the agent, not a verification.
    customer = await db.row(_MATCH_PHONE, {"number": data.caller_number})
    call = await calls.insert(
        db,
        caller_number=data.caller_number,
        language=data.language or (customer[1] if customer else None),
        customer_id=customer[0] if customer else None,
        vip=bool(customer and customer[2] == "vip"),
    )
    context.inserted(db, call)
    await _publish(session, "call.created", call, agent=False)
    return call


_ACCOUNT = Sql(
    """
    SELECT id, account_number, pin_hash, segment, language, locked_until FROM customers
    WHERE account_number = :account {for_update}
    """
)
_FAILURES = Sql(
    "SELECT count(*) FROM verification_failures WHERE account_number = :account AND at > :since"
)
_ADD_FAILURE = Sql(
    "INSERT INTO verification_failures (account_number, call_id, at) "
    "VALUES (:account, :call_id, :at)"
)
_LOCK_ACCOUNT = Sql("UPDATE customers SET locked_until = :until WHERE id = :id")


async def verify(session: Unit, *, call: CallRow, data: VerifyIn) -> VerifyOut:
    if call.state != CallState.ivr.value:
        raise Conflict(f"the call is {call.state}: verification happens in the phone tree")
    now = utcnow()
    db = await Db.of(session)
    # The account's row is locked: two calls trying one account count their failures in turn.
    customer = await db.row(_ACCOUNT, {"account": data.account_number})
    locked_until = db.dt(customer[5]) if customer else None
    locked = bool(locked_until and locked_until > now)
    call_left = MAX_TRIES - call.verify_failures
    if call_left <= 0:
        return VerifyOut(verified=False, attempts_left=0, locked=locked)
    # Always pay for one hash check, so that timing does not tell known accounts from unknown.
    pin_ok = await verify_secret_async(customer[2] if customer else None, data.pin)
    account_failures = 0
    if customer is not None:
        account_failures = int(
            await db.value(_FAILURES, {"account": customer[1], "since": db.ts(now - LOCK_WINDOW)})
        )
    if pin_ok and not locked and customer is not None:
        customer_id, _, _, segment, language, _ = customer
        call.customer_id = customer_id
        call.verified = True
        call.verify_method = "account_pin"
        call.verified_at = now
        call.vip = segment == "vip"
        call.language = call.language or language
        left = min(call_left, MAX_TRIES - account_failures)
        await _publish(session, "call.updated", call, agent=False)
        return VerifyOut(verified=True, attempts_left=max(0, left), locked=False)
    call.verify_failures += 1
    call_left -= 1
    if customer is not None and not locked:
        await db.run(_ADD_FAILURE, {"account": customer[1], "call_id": call.id, "at": db.ts(now)})
        account_failures += 1
        if account_failures >= MAX_TRIES:
            await db.run(_LOCK_ACCOUNT, {"until": db.ts(now + LOCK_FOR), "id": customer[0]})
            locked = True
    account_left = 0 if locked else MAX_TRIES - account_failures
    return VerifyOut(
        verified=False, attempts_left=max(0, min(call_left, account_left)), locked=locked
    )


async def add_step(session: Unit, *, call: CallRow, data: StepIn) -> StepOut:
    if call.state in FINAL_STATES:
        raise Conflict(f"the call is {call.state}")
    db = await Db.of(session)
    step = StepOut(node=data.node, prompt=data.prompt, input=data.input, at=utcnow())
    await calls.add_step(
        db, call_id=call.id, node=step.node, prompt=step.prompt, input=step.input, at=step.at
    )
    context.forget(db, call.id)
    if call.state == CallState.ivr.value:
        # Supervisors watch callers still in the tree.
        await _publish(session, "call.updated", call, agent=False)
    return step


async def handoff(session: Unit, *, call: CallRow, data: HandoffIn) -> QueuedOut:
    if call.state != CallState.ivr.value:
        raise Conflict(f"the call is {call.state}: it was handed off already")
    queue = _ctx(session).flow.queue_for(data.intent) if data.intent else None
    reason = data.escalate_reason
    if reason is not None or queue is None:
        queue = ESCALATIONS
        reason = reason or "unscripted"
    elif queue == ESCALATIONS:
        reason = "caller_requested"
    now = utcnow()
    call.intent = data.intent
    call.collected = dict(data.collected)
    call.utterance = data.utterance
    call.escalation_reason = reason
    if call.language is None and data.collected.get("language") in _ctx(session).flow.languages:
        call.language = data.collected["language"]
    call.first_queued_at = now
    routing.requeue(session, call, queue=queue)
    await routing.match_pending(session)
    if call.state == CallState.queued.value:
        # Supervisors see what the caller told the tree. A call offered in this same commit
        # needs no such event: call.offered, which they get too, carries the newer context.
        await _publish(session, "call.updated", call, agent=False)
    position = await routing.position(session, call)
    # Queued is what the handoff did; the offer that may follow in this same commit is the
    # agent's news (call.offered), and the position then says the caller is next.
    return QueuedOut(id=call.id, state=CallState.queued.value, queue=queue, position=position or 1)


async def hangup(session: Unit, *, call: CallRow) -> CallContext:
    now = utcnow()
    if call.state in (CallState.ivr.value, CallState.queued.value, CallState.offered.value):
        if call.state == CallState.offered.value:
            await routing.revoke_offer(session, call, reason="abandoned", now=now)
        call.state = CallState.abandoned.value
        call.hungup_at = call.ended_at = now
        call.agent_id = None
        call.offer_expires_at = None
        await _publish(session, "call.abandoned", call, agent=False)
    elif call.state == CallState.connected.value:
        call.state = CallState.wrapup.value
        call.hungup_at = now
        if call.agent_id is not None:
            agent = await routing.lock_user(session, call.agent_id)
            if agent is not None:
                routing.set_status(session, agent, AgentStatus.wrapup.value, now)
        await _publish(session, "call.updated", call)
    else:
        raise Conflict(f"the call is {call.state}: the caller is gone already")
    return await context.one(session, call)


async def survey(session: Unit, *, call: CallRow, data: SurveyIn) -> CallContext:
    if call.state not in (CallState.wrapup.value, CallState.ended.value):
        raise Conflict(f"the call is {call.state}: the survey follows a call with an agent")
    if call.csat is not None:
        raise Conflict("the survey was answered already")
    call.csat = data.csat
    call.had_to_repeat = data.had_to_repeat
    await _publish(session, "call.updated", call, agent=False)
    return await context.one(session, call)


async def position(session: Unit, *, call: CallRow) -> PositionOut:
    pos = await routing.position(session, call)
    return PositionOut(
        state=call.state, queue=call.queue, position=pos, wait_s=context.wait_s(call, utcnow())
    )


# --- the agents' routes -----------------------------------------------------------------------


async def accept(session: Unit, *, call: CallRow, user: UserRow) -> CallContext:
    _require_mine(call, user, CallState.offered.value)
    now = utcnow()
    agent = await routing.lock_user(session, user.id)
    assert agent is not None
    call.state = CallState.connected.value
    call.offer_expires_at = None
    call.connected_at = now
    call.first_connected_at = call.first_connected_at or now
    routing.set_status(session, agent, AgentStatus.busy.value, now)
    await _publish(session, "call.connected", call)
    return await context.one(session, call)


async def reject(session: Unit, *, call: CallRow, user: UserRow) -> CallContext:
    _require_mine(call, user, CallState.offered.value)
    now = utcnow()
    call.rejected_by = sorted({*(call.rejected_by or []), user.id})
    agent = await routing.lock_user(session, user.id)
    assert agent is not None
    call.offer_expires_at = None
    routing.release(session, agent, reason="reject", now=now)
    routing.requeue(session, call)
    return await context.one(session, call)


async def add_note(session: Unit, *, call: CallRow, user: UserRow, data: NoteIn) -> NoteOut:
    if user.role != Role.supervisor:
        _require_mine(
            call, user, CallState.offered.value, CallState.connected.value, CallState.wrapup.value
        )
    note = NoteOut(
        author=Person(id=user.id, display_name=user.display_name), text=data.text, at=utcnow()
    )
    await _add_note(session, call, user, note.text, note.at)
    await _publish(session, "call.updated", call)
    return note


async def _add_note(session: Unit, call: CallRow, user: UserRow, text: str, at: datetime) -> None:
    db = await Db.of(session)
    await calls.add_note(db, call_id=call.id, author_id=user.id, text=text, at=at)
    context.forget(db, call.id)


async def _free_agent_after(session: Unit, call: CallRow, user: UserRow) -> None:
    agent = await routing.lock_user(session, user.id)
    assert agent is not None
    routing.release(session, agent, reason="wrap", now=utcnow())


async def _target_agent(session: Unit, agent_id: int) -> UserRow:
    agent = await routing.lock_user(session, agent_id)
    if agent is None or agent.role != Role.agent.value:
        raise NotFound("agent not found")
    if agent.status == AgentStatus.offline.value:
        raise Conflict(f"{agent.display_name} is not signed in")
    if agent.status not in (AgentStatus.available.value, AgentStatus.away.value):
        raise Conflict(f"{agent.display_name} is on another call ({agent.status})")
    return agent


async def _add_transfer(
    session: Unit,
    call: CallRow,
    user: UserRow,
    *,
    to_queue: str | None,
    to_agent_id: int | None,
    note: str | None,
    at: datetime,
) -> None:
    db = await Db.of(session)
    await calls.add_transfer(
        db,
        call_id=call.id,
        from_agent_id=user.id,
        to_queue=to_queue,
        to_agent_id=to_agent_id,
        note=note,
        at=at,
    )
    context.forget(db, call.id)


async def transfer(session: Unit, *, call: CallRow, user: UserRow, data: TransferIn) -> CallContext:
    _require_mine(call, user, CallState.connected.value)
    if data.queue is not None and data.queue not in _ctx(session).flow.queues:
        raise Invalid(f"unknown queue {data.queue!r}")
    if data.agent_id == user.id:
        raise Invalid("a call cannot be transferred to the agent who has it")
    target = await _target_agent(session, data.agent_id) if data.agent_id is not None else None
    now = utcnow()
    await _add_transfer(
        session,
        call,
        user,
        to_queue=data.queue,
        to_agent_id=target.id if target else None,
        note=data.note,
        at=now,
    )
    if data.note:
        await _add_note(session, call, user, data.note, now)
    call.connected_at = None
    await _free_agent_after(session, call, user)
    if target is not None:
        await routing.offer(session, call, target, now)
    else:
        assert data.queue is not None
        if data.queue == ESCALATIONS and call.escalation_reason is None:
            call.escalation_reason = "agent_transfer"
        routing.requeue(session, call, queue=data.queue)
    # The agent who had the call sees it leave, with where it went.
    await _publish(session, "call.updated", call, to=user.id)
    return await context.one(session, call)


async def escalate(session: Unit, *, call: CallRow, user: UserRow, reason: str) -> CallContext:
    _require_mine(call, user, CallState.connected.value)
    now = utcnow()
    await _add_transfer(
        session,
        call,
        user,
        to_queue=ESCALATIONS,
        to_agent_id=None,
        note=f"escalated: {reason}",
        at=now,
    )
    call.escalation_reason = reason
    call.connected_at = None
    await _free_agent_after(session, call, user)
    routing.requeue(session, call, queue=ESCALATIONS)
    await _publish(session, "call.updated", call, to=user.id)
    return await context.one(session, call)


async def wrap(session: Unit, *, call: CallRow, user: UserRow, data: WrapIn) -> CallContext:
    _require_mine(call, user, CallState.connected.value, CallState.wrapup.value)
    now = utcnow()
    if data.notes:
        await _add_note(session, call, user, data.notes, now)
    call.state = CallState.ended.value
    call.disposition = data.disposition
    call.sentiment = data.sentiment
    call.ended_at = now
    call.hungup_at = call.hungup_at or now
    await _publish(session, "call.ended", call)
    await _free_agent_after(session, call, user)
    return await context.one(session, call)


# --- the supervisors' routes ------------------------------------------------------------------


async def assign(session: Unit, *, call: CallRow, agent_id: int) -> CallContext:
    if call.state not in (CallState.queued.value, CallState.offered.value):
        raise Conflict(f"the call is {call.state}: only a queued or offered call can be assigned")
    if call.agent_id == agent_id:
        raise Conflict("the call is offered to that agent already")
    target = await _target_agent(session, agent_id)
    now = utcnow()
    if call.state == CallState.offered.value:
        await routing.revoke_offer(session, call, reason="reassigned", now=now)
    await routing.offer(session, call, target, now)
    return await context.one(session, call)


_LIST = f"SELECT {CallRow.columns('calls')} FROM calls"
_LIST_FILTERS = {
    "agent": "JOIN call_agents ON call_agents.call_id = calls.id AND call_agents.agent_id = :agent",
    "state": "calls.state = :state",
    "queue": "calls.queue = :queue",
}
_LISTS: dict[tuple[str, ...], Sql] = {}


def _list_sql(filters: tuple[str, ...]) -> Sql:
    sql = _LISTS.get(filters)
    if sql is None:
        joins = [_LIST_FILTERS[f] for f in filters if f == "agent"]
        wheres = [_LIST_FILTERS[f] for f in filters if f != "agent"]
        text = " ".join([_LIST, *joins, *(["WHERE " + " AND ".join(wheres)] if wheres else [])])
        sql = _LISTS[filters] = Sql(
            f"{text} ORDER BY calls.created_at DESC, calls.id DESC LIMIT {LIST_LIMIT}"
        )
    return sql


async def list_calls(
    session: Unit, *, user: UserRow, state: str | None, queue: str | None
) -> list[CallContext]:
    params: dict[str, object] = {}
    if user.role != Role.supervisor:
        params["agent"] = user.id
    if state is not None:
        params["state"] = state
    if queue is not None:
        params["queue"] = queue
    db = await Db.of(session)
    rows = await db.rows(_list_sql(tuple(params)), params)
    return await context.build(session, [CallRow.load(db, r) for r in rows])


_ESCALATIONS = Sql(
    f"""
    SELECT {CallRow.columns()} FROM calls
    WHERE queue = '{ESCALATIONS}' AND state IN ({ACTIVE})
    ORDER BY vip DESC, queued_at, id
    """
)


async def escalations(session: Unit) -> list[EscalationOut]:
    db = await Db.of(session)
    found = [CallRow.load(db, r) for r in await db.rows(_ESCALATIONS)]
    names = await users.names(db, {c.agent_id for c in found if c.agent_id is not None})
    now = utcnow()
    out = []
    for call, ctx in zip(found, await context.build(session, found), strict=True):
        agent = (
            Person(id=call.agent_id, display_name=names[call.agent_id])
            if call.agent_id in names
            else None
        )
        out.append(
            EscalationOut(
                **ctx.model_dump(),
                reason=call.escalation_reason,
                wait_s=context.wait_s(call, now),
                agent=agent,
            )
        )
    return out
