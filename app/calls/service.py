"""The call lifecycle: the IVR's handoff, the agents' actions and the supervisors' assignments.

Each function runs in the caller's unit of work, locks the rows it judges, and queues the events
the change causes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from app.audit import service as audit
from app.auth.service import verify_secret_async
from app.calls import bounds, context
from app.calls import repository as calls
from app.calls.bounds import Grown
from app.calls.models import ESCALATIONS, AskedAgain, Call, IvrStep, Note, Transfer
from app.calls.schemas import (
    AskedAgainIn,
    AskedAgainOut,
    CallbackIn,
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
from app.calls.states import FINAL_STATES, CallState
from app.customers import repository as customers
from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.metrics.service import count_escalation, count_offer
from app.promises import service as promises
from app.reports import rollup
from app.routing import service as routing
from app.uow import RawJson, UnitOfWork
from app.users import repository as users
from app.users.models import AgentStatus, Role, User

log = logging.getLogger("tellonce.calls")

MAX_TRIES = 3
LOCK_WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)
LIST_LIMIT = 500
# A second call about the same intent within this is a repeat of the first.
REPEAT_WINDOW = timedelta(days=7)
IDENTITY = "identity"


async def _publish(
    uow: UnitOfWork,
    type_: str,
    call: Call,
    *,
    agent: bool = True,
    to: int | None = None,
    grew: Collection[Grown] = (),
) -> CallContext:
    """An event carrying the call context, to the supervisors and to its agent (or to `to`);
    the context, for the response. grew: the lists this change added to, held to their caps."""
    found = await context.one(uow.session, call)
    data = found.model_dump_json()
    if grew:
        bounds.check(uow.ctx.settings, found, data, grew)
    user_id = to if to is not None else (call.agent_id if agent else None)
    uow.emit(type_, RawJson(data), user_id=user_id)
    return found


def _moved(note: str | None) -> tuple[Grown, ...]:
    """What a transfer, an escalation or a supervisor's move adds: a row of transfers, and a
    note when it carries one."""
    return (Grown.transfers, Grown.notes) if note else (Grown.transfers,)


async def _bounded(uow: UnitOfWork, call: Call, grew: Collection[Grown]) -> CallContext:
    """The context, for a change that adds to the call but sends no event carrying it."""
    found = await context.one(uow.session, call)
    if grew:
        bounds.check(uow.ctx.settings, found, found.model_dump_json(), grew)
    return found


# --- lookups and rights ---------------------------------------------------------------------


async def get_locked(uow: UnitOfWork, call_id: int) -> Call:
    call = await calls.get(uow.session, call_id, lock=True)
    if call is None:
        raise NotFound("call not found")
    return call


async def visible(uow: UnitOfWork, *, call_id: int, user: User) -> Call:
    """The call, locked, if the user may see it: supervisors all, agents those ever theirs."""
    call = await get_locked(uow, call_id)
    if (
        user.role != Role.supervisor
        and call.agent_id != user.id
        and not await calls.seen_by(uow.session, call_id=call.id, agent_id=user.id)
    ):
        raise NotFound("call not found")
    return call


async def readable(uow: UnitOfWork, *, call_id: int, user: User) -> Call:
    """The call, if the user may read it: what `visible` allows, and for an agent also the
    earlier calls (over) of the customer of a call the agent has now (on offer, on the line or
    in wrap-up), so that the agent can open them from the screen pop."""
    call = await get_locked(uow, call_id)
    if (
        user.role == Role.supervisor
        or call.agent_id == user.id
        or await calls.seen_by(uow.session, call_id=call.id, agent_id=user.id)
    ):
        return call
    if (
        call.customer_id is not None
        and call.state in FINAL_STATES
        and await calls.serving(uow.session, agent_id=user.id, customer_id=call.customer_id)
        is not None
    ):
        return call
    raise NotFound("call not found")


def _require_mine(call: Call, user: User, *states: CallState) -> None:
    if call.agent_id != user.id or call.state not in states:
        raise Conflict(
            f"the call is {call.state}" + ("" if call.agent_id == user.id else " and not yours")
        )


# --- the IVR's routes -------------------------------------------------------------------------


async def create(uow: UnitOfWork, *, data: CallCreate) -> Call:
    languages = uow.ctx.flow.languages
    if data.language is not None and data.language not in languages:
        raise Invalid(f"language must be one of {', '.join(languages)}", loc=("body", "language"))
    # The caller number matched to a customer: a hint for the agent, not a verification.
    customer = await customers.by_phone(uow.session, data.caller_number)
    now = utcnow()
    call = await calls.insert(
        uow.session,
        Call(
            state=CallState.ivr,
            caller_number=data.caller_number,
            language=data.language or (customer.language if customer else None),
            customer_id=customer.id if customer else None,
            caller_known=customer is not None,
            vip=customer is not None and customer.segment == "vip",
            collected={},
            rejected_by=[],
            created_at=now,
            ivr_active_at=now,
        ),
    )
    await _publish(uow, "call.created", call, agent=False)
    return call


async def verify(uow: UnitOfWork, *, call_id: int, data: VerifyIn) -> VerifyOut:
    # The PIN's hash is read and checked before the transaction begins: argon2 takes tens of
    # milliseconds, and a transaction held meanwhile (on SQLite, the one connection) would hold
    # up every other call.
    async with uow.outside() as session:
        stored = await customers.pin_hash(session, data.account_number)
    # Always pay for one hash check, so that timing does not tell known accounts from unknown.
    pin_ok = await verify_secret_async(stored, data.pin)

    call = await get_locked(uow, call_id)
    if call.state != CallState.ivr:
        raise Conflict(f"the call is {call.state}: verification happens in the phone tree")
    now = utcnow()
    call.ivr_active_at = now
    # The account's row is locked: two calls trying one account count their failures in turn.
    customer = await customers.get_by_account(uow.session, data.account_number, lock=True)
    if customer is not None and customer.pin_hash != stored:
        pin_ok = False  # the PIN changed meanwhile: what was checked is not the PIN now
    locked = bool(customer and customer.locked_until and customer.locked_until > now)
    call_left = MAX_TRIES - call.verify_failures
    if call_left <= 0:
        return VerifyOut(verified=False, attempts_left=0, locked=locked)
    account_failures = 0
    if customer is not None:
        # Failures within the window count, but none from before the last lock ended (by
        # itself, or lifted by a supervisor).
        since = max(now - LOCK_WINDOW, customer.locked_until or now - LOCK_WINDOW)
        account_failures = await customers.failures_since(
            uow.session, customer.account_number, since=since
        )
    if pin_ok and not locked and customer is not None:
        call.customer_id = customer.id
        call.verified = True
        call.verify_method = "account_pin"
        call.verified_at = now
        call.vip = customer.segment == "vip"
        call.language = call.language or customer.language
        left = min(call_left, MAX_TRIES - account_failures)
        await _publish(uow, "call.updated", call, agent=False)
        return VerifyOut(verified=True, attempts_left=max(0, left), locked=False)
    call.verify_failures += 1
    call_left -= 1
    if customer is not None and not locked:
        customers.add_failure(
            uow.session, account_number=customer.account_number, call_id=call.id, at=now
        )
        account_failures += 1
        if account_failures >= MAX_TRIES:
            customer.locked_until = now + LOCK_FOR
            locked = True
            audit.customer_locked(uow.session, customer, call=call, failures=account_failures)
    account_left = 0 if locked else MAX_TRIES - account_failures
    return VerifyOut(
        verified=False, attempts_left=max(0, min(call_left, account_left)), locked=locked
    )


async def add_step(uow: UnitOfWork, *, call: Call, data: StepIn) -> StepOut:
    if call.state in FINAL_STATES:
        raise Conflict(f"the call is {call.state}")
    step = StepOut(node=data.node, prompt=data.prompt, input=data.input, at=utcnow())
    calls.add_step(
        uow.session,
        IvrStep(call_id=call.id, node=step.node, prompt=step.prompt, input=step.input, at=step.at),
    )
    if call.state == CallState.ivr:
        call.ivr_active_at = step.at
        # Supervisors watch callers still in the tree.
        await _publish(uow, "call.updated", call, agent=False, grew=(Grown.steps,))
    else:
        await _bounded(uow, call, (Grown.steps,))
    return step


async def handoff(uow: UnitOfWork, *, call: Call, data: HandoffIn) -> QueuedOut:
    if call.state == CallState.abandoned:
        raise Conflict(
            "the call is abandoned: the caller hung up, or the phone tree was silent too long"
        )
    if call.state != CallState.ivr:
        raise Conflict(f"the call is {call.state}: it was handed off already")
    flow = uow.ctx.flow
    queue = flow.queue_for(data.intent) if data.intent else None
    reason = data.escalate_reason
    if reason is not None or queue is None:
        queue = ESCALATIONS
        reason = reason or "unscripted"
    elif queue == ESCALATIONS:
        reason = "caller_requested"
    call.intent = data.intent
    await _find_repeat(uow, call)
    call.collected = dict(data.collected)
    call.utterance = data.utterance
    call.escalation_reason = reason
    if call.language is None and data.collected.get("language") in flow.languages:
        call.language = data.collected["language"]
    call.first_queued_at = utcnow()
    routing.requeue(uow, call, queue=queue)
    if queue == ESCALATIONS:
        call.escalations += 1
        count_escalation(uow, reason)
        audit.escalated(uow.session, call, by=audit.Actor.ivr, reason=reason)
    # The offer, if an agent is free, now rather than at the commit: the caller is then told
    # they are next, and a call on offer needs no count of the calls ahead.
    await uow.run_now(routing.match_now)
    if call.state == CallState.queued:
        # Supervisors see what the caller told the tree. A call offered in this same commit
        # needs no such event: call.offered, which they get too, carries the newer context.
        await _publish(uow, "call.updated", call, agent=False)
    position = await routing.position(uow, call)
    # Queued is what the handoff did; the offer that may follow in this same commit is the
    # agent's news (call.offered), and the position then says the caller is next.
    return QueuedOut(id=call.id, state=CallState.queued, queue=queue, position=position or 1)


async def _find_repeat(uow: UnitOfWork, call: Call) -> None:
    """A second call of the customer about the same intent within REPEAT_WINDOW: remember the
    first, and the agent who handled it, who is offered this one first (routing.match)."""
    if call.customer_id is None or call.intent is None:
        return
    earlier = await calls.earlier_about(
        uow.session, call=call, intent=call.intent, since=call.created_at - REPEAT_WINDOW
    )
    if earlier is not None:
        call.repeat_of = earlier.id
        call.prefer_agent_id = earlier.agent_id if earlier.state == CallState.ended else None


async def _final_effort(uow: UnitOfWork, call: Call, found: CallContext) -> None:
    """The call is over: keep its score for the customer's history and their sum."""
    if found.effort is not None:
        call.effort_score = found.effort.score


async def hangup(uow: UnitOfWork, *, call: Call) -> CallContext:
    now = utcnow()
    if call.callback_requested_at is not None and call.state in (
        CallState.queued,
        CallState.offered,
    ):
        # The caller hung up after asking for a callback: the call waits on without them,
        # keeping its place, so the end of their line changes nothing.
        return await context.one(uow.session, call)
    if call.state in (CallState.ivr, CallState.queued, CallState.offered):
        if call.state == CallState.offered:
            await routing.revoke_offer(uow, call, reason="abandoned", now=now)
        call.move_to(CallState.abandoned)
        call.stop_waiting(now)
        call.hungup_at = call.ended_at = now
        call.agent_id = None
        call.offer_expires_at = None
        found = await _publish(uow, "call.abandoned", call, agent=False)
        await _final_effort(uow, call, found)
        return found
    if call.state == CallState.connected:
        call.move_to(CallState.wrapup)
        call.hungup_at = now
        if call.agent_id is not None:
            agent = await routing.lock_user(uow, call.agent_id)
            routing.set_status(uow, agent, AgentStatus.wrapup, now)
        return await _publish(uow, "call.updated", call)
    raise Conflict(f"the call is {call.state}: the caller is gone already")


async def abandon_silent(uow: UnitOfWork, *, now: datetime, limit: int = 200) -> int:
    """End as abandoned the calls left in the phone tree with no word from it for
    TELLONCE_IVR_SILENCE_S: the tree that held them went away (a crash, a lost connection)
    without hanging up, so the caller is gone. The same events as the tree's own hang-up. Any
    instance may do it, each call once: rows are locked and rows another transaction holds,
    such as a step arriving now, are skipped (that step makes the call speak again)."""
    silence = timedelta(seconds=uow.ctx.settings.ivr_silence_s)
    due = await calls.silent_in_ivr(uow.session, before=now - silence, limit=limit)
    for call in due:
        await hangup(uow, call=call)
        audit.record(
            uow.session,
            by=audit.Actor.system,
            action="call.abandoned_silent",
            object_type="call",
            object_id=call.id,
            call_id=call.id,
            details={"silence_s": silence.total_seconds()},
        )
        log.info(
            "call %d abandoned: no word from the phone tree for %.0f s",
            call.id,
            silence.total_seconds(),
        )
    return len(due)


async def next_silence_deadline(uow: UnitOfWork) -> datetime | None:
    """When the call silent longest in the phone tree will be abandoned (None: no call there)."""
    oldest = await calls.oldest_ivr_word(uow.session)
    if oldest is None:
        return None
    return oldest + timedelta(seconds=uow.ctx.settings.ivr_silence_s)


async def survey(uow: UnitOfWork, *, call: Call, data: SurveyIn) -> CallContext:
    if call.state not in (CallState.wrapup, CallState.ended):
        raise Conflict(f"the call is {call.state}: the survey follows a call with an agent")
    if call.csat is not None:
        raise Conflict("the survey was answered already")
    call.csat = data.csat
    call.had_to_repeat = data.had_to_repeat
    await rollup.add_survey(uow.session, call)
    return await _publish(uow, "call.updated", call, agent=False)


async def position(uow: UnitOfWork, *, call: Call) -> PositionOut:
    pos = await routing.position(uow, call)
    waited = context.wait_s(call, utcnow())
    offer_in = _callback_offer_in(uow, call, waited)
    return PositionOut(
        state=call.state,
        queue=call.queue,
        position=pos,
        wait_s=waited,
        callback_offer=offer_in == 0,
        callback_offer_in_s=offer_in,
    )


def _callback_offer_in(uow: UnitOfWork, call: Call, waited: float | None) -> float | None:
    """Seconds until the caller may be offered a callback (0: now); None when no offer is
    coming: callbacks are off, one was asked for already, or the call waits in no queue."""
    after = uow.ctx.settings.callback_offer_after_s
    if after <= 0 or call.callback_requested_at is not None or call.state != CallState.queued:
        return None
    return max(0.0, round(after - (waited or 0.0), 1))


async def request_callback(uow: UnitOfWork, *, call: Call, data: CallbackIn) -> CallContext:
    """The caller took the callback offer and hangs up: the call stays in its queue with its
    place (queued_at unchanged), its wait and everything collected, and is marked for the
    agent who takes it to phone back. The wait keeps counting until an agent takes the call,
    as for any caller: the customer still waits for the centre, on the line or not."""
    if call.callback_requested_at is not None:
        raise Conflict("a callback was asked for already")
    if call.state not in (CallState.queued, CallState.offered):
        raise Conflict(f"the call is {call.state}: only a waiting caller is offered a callback")
    after = uow.ctx.settings.callback_offer_after_s
    if after <= 0:
        raise Conflict("callbacks are not offered (TELLONCE_CALLBACK_OFFER_AFTER_S is 0)")
    now = utcnow()
    waited = context.wait_s(call, now) or 0.0
    if waited < after:
        raise Conflict(f"no callback is offered yet: the caller has waited {waited:.0f} s")
    call.callback_number = data.number or call.caller_number
    call.callback_requested_at = now
    # An agent holding the offer sees at once that this caller is to be phoned back.
    return await _publish(uow, "call.updated", call)


# --- the agents' routes -----------------------------------------------------------------------


async def accept(uow: UnitOfWork, *, call: Call, user: User) -> CallContext:
    _require_mine(call, user, CallState.offered)
    now = utcnow()
    agent = await routing.lock_user(uow, user.id)
    call.move_to(CallState.connected)
    call.offer_expires_at = None
    call.stop_waiting(now)
    call.connected_at = now
    call.first_connected_at = call.first_connected_at or now
    routing.set_status(uow, agent, AgentStatus.busy, now)
    count_offer(uow, "accepted")
    return await _publish(uow, "call.connected", call)


async def reject(uow: UnitOfWork, *, call: Call, user: User) -> CallContext:
    _require_mine(call, user, CallState.offered)
    now = utcnow()
    _passed_on(call, user.id, now)
    agent = await routing.lock_user(uow, user.id)
    call.offer_expires_at = None
    routing.release(uow, agent, reason="reject", now=now)
    routing.requeue(uow, call)
    count_offer(uow, "rejected")
    return await context.one(uow.session, call)


async def add_note(uow: UnitOfWork, *, call: Call, user: User, data: NoteIn) -> NoteOut:
    if user.role != Role.supervisor:
        _require_mine(call, user, CallState.offered, CallState.connected, CallState.wrapup)
    note = NoteOut(
        author=Person(id=user.id, display_name=user.display_name), text=data.text, at=utcnow()
    )
    _add_note(uow, call, user, note.text, note.at)
    await _publish(uow, "call.updated", call, grew=(Grown.notes,))
    return note


def _add_note(uow: UnitOfWork, call: Call, user: User, text: str, at: datetime) -> None:
    calls.add_note(uow.session, Note(call_id=call.id, author_id=user.id, text=text, at=at))


async def _free_agent_after(uow: UnitOfWork, user: User) -> None:
    agent = await routing.lock_user(uow, user.id)
    routing.release(uow, agent, reason="wrap", now=utcnow())


async def _target_agent(uow: UnitOfWork, agent_id: int) -> User:
    agent = await users.get(uow.session, agent_id, lock=True)
    if agent is None or agent.role != Role.agent:
        raise NotFound("agent not found")
    if agent.status == AgentStatus.offline:
        raise Conflict(f"{agent.display_name} is not signed in")
    if agent.status not in (AgentStatus.available, AgentStatus.away):
        raise Conflict(f"{agent.display_name} is on another call ({agent.status})")
    return agent


async def transfer(uow: UnitOfWork, *, call: Call, user: User, data: TransferIn) -> CallContext:
    if user.role == Role.supervisor:
        if data.queue is not None:
            return await move(uow, call=call, queue=data.queue, by=user, note=data.note)
        assert data.agent_id is not None
        return await assign(uow, call=call, agent_id=data.agent_id, by=user, note=data.note)
    _require_mine(call, user, CallState.connected)
    if data.queue is not None and data.queue not in uow.ctx.flow.queues:
        raise Invalid(f"unknown queue {data.queue!r}", loc=("body", "queue"))
    if data.agent_id == user.id:
        raise Invalid(
            "a call cannot be transferred to the agent who has it", loc=("body", "agent_id")
        )
    target = await _target_agent(uow, data.agent_id) if data.agent_id is not None else None
    now = utcnow()
    calls.add_transfer(
        uow.session,
        Transfer(
            call_id=call.id,
            from_agent_id=user.id,
            to_queue=data.queue,
            to_agent_id=target.id if target else None,
            note=data.note,
            at=now,
        ),
    )
    audit.transferred(uow.session, call, by=user, to_queue=data.queue, to_agent=target)
    if data.note:
        _add_note(uow, call, user, data.note, now)
    call.connected_at = None
    await _free_agent_after(uow, user)
    if target is not None:
        call.start_waiting(now)  # on hold until the other agent answers
        await routing.offer(uow, call, target, now)
    else:
        assert data.queue is not None
        if data.queue == ESCALATIONS:
            call.escalations += 1
            call.escalation_reason = call.escalation_reason or "agent_transfer"
            count_escalation(uow, call.escalation_reason)
        _passed_on(call, user.id, now)
        routing.requeue(uow, call, queue=data.queue)
    # The agent who had the call sees it leave, with where it went.
    return await _publish(uow, "call.updated", call, to=user.id, grew=_moved(data.note))


def _passed_on(call: Call, agent_id: int, now: datetime) -> None:
    """The agent let the call go (rejected it, sent it to a queue they also serve, such as
    escalations, or had it moved to a queue by a supervisor): it goes to other agents first,
    and comes back to this one only once nobody else can take it (routing.match)."""
    call.rejected_by = sorted({*(call.rejected_by or []), agent_id})
    call.rejected_at = now


async def escalate(uow: UnitOfWork, *, call: Call, user: User, reason: str) -> CallContext:
    _require_mine(call, user, CallState.connected)
    now = utcnow()
    calls.add_transfer(
        uow.session,
        Transfer(
            call_id=call.id,
            from_agent_id=user.id,
            to_queue=ESCALATIONS,
            to_agent_id=None,
            note=f"escalated: {reason}",
            at=now,
        ),
    )
    audit.escalated(uow.session, call, by=user, reason=reason)
    call.escalations += 1
    call.escalation_reason = reason
    count_escalation(uow, reason)
    call.connected_at = None
    await _free_agent_after(uow, user)
    _passed_on(call, user.id, now)
    routing.requeue(uow, call, queue=ESCALATIONS)
    return await _publish(uow, "call.updated", call, to=user.id, grew=_moved(None))


async def wrap(uow: UnitOfWork, *, call: Call, user: User, data: WrapIn) -> CallContext:
    _require_mine(call, user, CallState.connected, CallState.wrapup)
    now = utcnow()
    if data.promise is not None:
        promises.make(uow.session, call=call, by=user, data=data.promise, now=now)
    if data.notes:
        _add_note(uow, call, user, data.notes, now)
    call.move_to(CallState.ended)
    call.disposition = data.disposition
    call.sentiment = data.sentiment
    call.ended_at = now
    call.hungup_at = call.hungup_at or now
    found = await _publish(uow, "call.ended", call, grew=(Grown.notes,) if data.notes else ())
    await _final_effort(uow, call, found)
    await _free_agent_after(uow, user)
    return found


async def asked_again(
    uow: UnitOfWork, *, call: Call, user: User, data: AskedAgainIn
) -> tuple[AskedAgainOut, bool]:
    """The agent on the call had to ask the caller for something the phone tree had collected:
    one of the call's collected answers, or "identity" on a call the tree verified. The same
    agent asking for the same field twice is recorded once. Returns the entry, and whether it
    is new."""
    _require_mine(call, user, CallState.connected, CallState.wrapup)
    if data.field == IDENTITY:
        if not call.verified:
            raise Invalid(
                "the phone tree did not verify this caller: asking who they are is not "
                "asking again",
                loc=("body", "field"),
            )
    elif data.field not in (call.collected or {}):
        raise Invalid(
            f"the phone tree collected no {data.field!r} on this call", loc=("body", "field")
        )
    found = await calls.asked_before(
        uow.session, call_id=call.id, field=data.field, agent_id=user.id
    )
    if found is not None:
        return AskedAgainOut(field=data.field, agent_id=user.id, at=found), False
    entry = AskedAgainOut(field=data.field, agent_id=user.id, at=utcnow())
    calls.add_asked_again(
        uow.session,
        AskedAgain(call_id=call.id, field=entry.field, agent_id=user.id, at=entry.at),
    )
    await _publish(uow, "call.updated", call, grew=(Grown.asked_again,))
    return entry, True


async def called_back(uow: UnitOfWork, *, call: Call, user: User) -> CallContext:
    """The agent who took a callback phoned the caller: the call goes on as any connected
    call."""
    _require_mine(call, user, CallState.connected)
    if call.callback_requested_at is None:
        raise Conflict("the caller asked for no callback on this call")
    if call.called_back_at is not None:
        raise Conflict("the call back was recorded already")
    call.called_back_at = utcnow()
    return await _publish(uow, "call.updated", call)


# --- the supervisors' routes ------------------------------------------------------------------


MOVABLE = (CallState.queued, CallState.offered, CallState.connected)


async def assign(
    uow: UnitOfWork, *, call: Call, agent_id: int, by: User, note: str | None = None
) -> CallContext:
    """A supervisor gives a waiting call, or one on a call with an agent, to an agent (who gets
    the offer at once); the trail says who moved it, when and to whom."""
    if call.state not in MOVABLE:
        raise Conflict(
            f"the call is {call.state}: only a waiting or connected call can be assigned"
        )
    if call.agent_id == agent_id:
        raise Conflict(f"the call is {call.state} with that agent already")
    target = await _target_agent(uow, agent_id)
    now = utcnow()
    talked = await _take_from_agent(
        uow, call, by=by, to_queue=None, to_agent=target, note=note, now=now
    )
    await routing.offer(uow, call, target, now)
    if talked is not None:
        return await _publish(uow, "call.updated", call, to=talked, grew=_moved(note))
    return await _bounded(uow, call, _moved(note))


async def move(
    uow: UnitOfWork, *, call: Call, queue: str, by: User, note: str | None
) -> CallContext:
    """A supervisor moves a waiting call (keeping its place by time) or a connected one (to
    the tail) to another queue; the trail says who moved it."""
    if call.state not in MOVABLE:
        raise Conflict(f"the call is {call.state}: only a waiting or connected call can be moved")
    if queue not in uow.ctx.flow.queues:
        raise Invalid(f"unknown queue {queue!r}", loc=("body", "queue"))
    if call.state != CallState.connected and call.queue == queue:
        raise Conflict(f"the call waits in {queue} already")
    now = utcnow()
    talked = await _take_from_agent(
        uow, call, by=by, to_queue=queue, to_agent=None, note=note, now=now
    )
    if queue == ESCALATIONS:
        call.escalations += 1
        call.escalation_reason = call.escalation_reason or "supervisor_transfer"
        count_escalation(uow, call.escalation_reason)
    if talked is not None:
        routing.requeue(uow, call, queue=queue)
        return await _publish(uow, "call.updated", call, to=talked, grew=_moved(note))
    call.queue = queue  # a waiting caller keeps their place by the time they joined
    routing.requeue(uow, call)
    return await _bounded(uow, call, _moved(note))


async def _take_from_agent(
    uow: UnitOfWork,
    call: Call,
    *,
    by: User,
    to_queue: str | None,
    to_agent: User | None,
    note: str | None,
    now: datetime,
) -> int | None:
    """Record the supervisor's move in the trail, and free the agent who had the call: an
    offer is revoked; a connected call's agent is freed (returned: the caller needs to tell
    them, with call.updated, where the call went), the caller on hold."""
    previous = call.agent_id
    calls.add_transfer(
        uow.session,
        Transfer(
            call_id=call.id,
            from_agent_id=previous,
            to_queue=to_queue,
            to_agent_id=to_agent.id if to_agent else None,
            by_id=by.id,
            note=note,
            at=now,
        ),
    )
    audit.call_moved(
        uow.session, call, by=by, from_agent_id=previous, to_queue=to_queue, to_agent=to_agent
    )
    if note:
        _add_note(uow, call, by, note, now)
    if previous is not None and to_queue is not None:
        _passed_on(call, previous, now)  # moved to a queue: not straight back to that agent
    if call.state == CallState.offered:
        reason = "moved" if to_queue is not None else "reassigned"
        await routing.revoke_offer(uow, call, reason=reason, now=now, by=by)
    elif call.state == CallState.connected and previous is not None:
        call.connected_at = None
        call.start_waiting(now)  # on hold until the next agent answers
        agent = await routing.lock_user(uow, previous)
        routing.release(uow, agent, reason="revoked", now=now)
        audit.status_forced(uow.session, agent, was="busy", reason="revoked", call=call, by=by)
        return previous
    return None


async def list_calls(
    uow: UnitOfWork,
    *,
    user: User,
    state: CallState | None,
    queue: str | None,
    agent_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[CallContext]:
    """since and until bound when the call was first queued, as the reports' periods do, so
    that a report's figure lists the calls behind it."""
    found = await calls.listed(
        uow.session,
        seen_by_agent=None if user.role == Role.supervisor else user.id,
        state=state,
        queue=queue,
        agent_id=agent_id,
        since=since,
        until=until,
        limit=LIST_LIMIT,
    )
    return await context.build(uow.session, found)


async def escalations(uow: UnitOfWork) -> list[EscalationOut]:
    found = await calls.active_escalations(uow.session)
    names = await users.names(uow.session, {c.agent_id for c in found if c.agent_id is not None})
    out = []
    for call, found_context in zip(found, await context.build(uow.session, found), strict=True):
        agent = (
            Person(id=call.agent_id, display_name=names[call.agent_id])
            if call.agent_id in names
            else None
        )
        out.append(
            EscalationOut(
                **found_context.model_dump(),
                reason=call.escalation_reason,
                agent=agent,
            )
        )
    return out
