"""Queries of calls and what travels with them: IVR steps, notes, transfers, who saw them.

The statements that every call's lifecycle runs are built once, at import, with named
parameters: building one costs SQLAlchemy several times what running it does
(docs/ARCHITECTURE.md); the rarer ones (lists) are built where they are used.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from app.calls.models import AskedAgain, Call, CallAgent, IvrStep, Note, Transfer
from app.calls.states import ACTIVE_STATES, FINAL_STATES, CallState
from app.db import DbSession, dialect_name, get_by_pk, get_locked, utcnow
from app.users.models import User

ESCALATIONS = "escalations"
# Queued calls in the order they are offered: vip callers first, then the longest waiting.
OFFER_ORDER = (Call.vip.desc(), Call.queued_at, Call.id)


async def get(session: DbSession, call_id: int, *, lock: bool = False) -> Call | None:
    if lock:
        return await get_locked(session, Call, call_id)
    return await get_by_pk(session, Call, call_id)


async def insert(session: DbSession, call: Call) -> Call:
    session.add(call)
    await session.flush()
    return call


def add_step(session: DbSession, step: IvrStep) -> None:
    session.add(step)


def add_note(session: DbSession, note: Note) -> None:
    session.add(note)


def add_transfer(session: DbSession, transfer: Transfer) -> None:
    session.add(transfer)


def add_asked_again(session: DbSession, asked: AskedAgain) -> None:
    session.add(asked)


_ASKED_BEFORE = (
    select(AskedAgain.at)
    .where(
        AskedAgain.call_id == bindparam("call_id"),
        AskedAgain.field == bindparam("field"),
        AskedAgain.agent_id == bindparam("agent_id"),
    )
    .limit(1)
)


async def asked_before(
    session: DbSession, *, call_id: int, field: str, agent_id: int
) -> datetime | None:
    """When the agent recorded asking for the field on the call again, if they did."""
    params = {"call_id": call_id, "field": field, "agent_id": agent_id}
    return await session.scalar(_ASKED_BEFORE, params)


_RECORD_AGENT = {
    dialect: insert(CallAgent)
    .values(call_id=bindparam("call_id"), agent_id=bindparam("agent_id"), at=bindparam("at"))
    .on_conflict_do_nothing(index_elements=[CallAgent.call_id, CallAgent.agent_id])
    for dialect, insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}


async def record_agent(session: DbSession, *, call_id: int, agent_id: int) -> None:
    """The agent may see this call and its customer from now on (kept if present)."""
    params = {"call_id": call_id, "agent_id": agent_id, "at": utcnow()}
    await session.execute(_RECORD_AGENT[dialect_name(session)], params)


_SEEN_BY = select(CallAgent.call_id).where(
    CallAgent.call_id == bindparam("call_id"), CallAgent.agent_id == bindparam("agent_id")
)


async def seen_by(session: DbSession, *, call_id: int, agent_id: int) -> bool:
    found = await session.scalar(_SEEN_BY, {"call_id": call_id, "agent_id": agent_id})
    return found is not None


async def listed(
    session: DbSession,
    *,
    seen_by_agent: int | None,
    state: CallState | None,
    queue: str | None,
    limit: int,
    agent_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Sequence[Call]:
    """Newest first; seen_by_agent: only the calls ever offered or assigned to that agent;
    agent_id: the calls whose agent (the last to have them) is that one; since and until: first
    queued from since, before until."""
    query = select(Call).order_by(Call.created_at.desc(), Call.id.desc()).limit(limit)
    if seen_by_agent is not None:
        query = query.join(
            CallAgent, and_(CallAgent.call_id == Call.id, CallAgent.agent_id == seen_by_agent)
        )
    if state is not None:
        query = query.where(Call.state == state)
    if queue is not None:
        query = query.where(Call.queue == queue)
    if agent_id is not None:
        query = query.where(Call.agent_id == agent_id)
    if since is not None:
        query = query.where(Call.first_queued_at >= since)
    if until is not None:
        query = query.where(Call.first_queued_at < until)
    return (await session.scalars(query)).all()


_ACTIVE_ESCALATIONS = (
    select(Call)
    .where(Call.queue == ESCALATIONS, Call.state.in_(ACTIVE_STATES))
    .order_by(*OFFER_ORDER)
)


async def active_escalations(session: DbSession) -> Sequence[Call]:
    return (await session.scalars(_ACTIVE_ESCALATIONS)).all()


class QueuedCall(NamedTuple):
    """What matching weighs of a queued call. Only the call it offers is loaded whole: calls
    left waiting where no agent is free would otherwise be loaded, every one, at each match."""

    id: int
    queue: str | None
    rejected_by: list[int] | None
    rejected_at: datetime | None
    prefer_agent_id: int | None


_QUEUED = (
    select(Call.id, Call.queue, Call.rejected_by, Call.rejected_at, Call.prefer_agent_id)
    .where(Call.state == CallState.queued)
    .order_by(*OFFER_ORDER)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_QUEUED_IN = _QUEUED.where(Call.queue.in_(bindparam("queues", expanding=True)))


async def queued(
    session: DbSession, *, queues: Collection[str] | None, limit: int
) -> list[QueuedCall]:
    """Queued calls (of `queues`) in offer order, locked; rows others hold are skipped."""
    if queues is None:
        rows = (await session.execute(_QUEUED, {"limit": limit})).all()
    else:
        params = {"limit": limit, "queues": sorted(queues)}
        rows = (await session.execute(_QUEUED_IN, params)).all()
    return [QueuedCall(*row) for row in rows]


_DUE_OFFERS = (
    select(Call)
    .where(Call.state == CallState.offered, Call.offer_expires_at <= bindparam("now"))
    .order_by(Call.offer_expires_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


async def due_offers(session: DbSession, *, now: datetime, limit: int) -> Sequence[Call]:
    return (await session.scalars(_DUE_OFFERS, {"now": now, "limit": limit})).all()


_OFFERED_TO = (
    select(Call)
    .where(Call.state == CallState.offered, Call.agent_id == bindparam("agent_id"))
    .with_for_update()
)


async def offered_to(session: DbSession, *, agent_id: int) -> Call | None:
    """The call on offer to the agent (an agent holds one at most), locked."""
    return await session.scalar(_OFFERED_TO, {"agent_id": agent_id})


_NEXT_OFFER_EXPIRY = select(func.min(Call.offer_expires_at)).where(Call.state == CallState.offered)


async def next_offer_expiry(session: DbSession) -> datetime | None:
    return await session.scalar(_NEXT_OFFER_EXPIRY)


_SILENT = (
    select(Call)
    .where(Call.state == CallState.ivr, Call.ivr_active_at <= bindparam("before"))
    .order_by(Call.ivr_active_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


async def silent_in_ivr(session: DbSession, *, before: datetime, limit: int) -> Sequence[Call]:
    """Calls in the phone tree with no word from it since before, locked; rows another
    transaction holds (a step arriving now) are skipped."""
    return (await session.scalars(_SILENT, {"before": before, "limit": limit})).all()


_OLDEST_IVR_WORD = select(func.min(Call.ivr_active_at)).where(Call.state == CallState.ivr)


async def oldest_ivr_word(session: DbSession) -> datetime | None:
    return await session.scalar(_OLDEST_IVR_WORD)


_WAITING = (
    select(Call.queue, func.count(), func.min(Call.waiting_since))
    .where(Call.state == CallState.queued, Call.queue.is_not(None))
    .group_by(Call.queue)
)


async def waiting(session: DbSession) -> dict[str, tuple[int, datetime | None]]:
    """queue -> (calls queued, since when the longest waiting of them has waited in all)."""
    rows = (await session.execute(_WAITING)).all()
    return {str(q): (int(n), oldest) for q, n, oldest in rows}


def _ahead(*, vip: bool) -> Select[int]:
    """The calls of a queue offered before a given one: those on offer, then vip callers, then
    whoever was queued earlier."""
    earlier = or_(
        Call.queued_at < bindparam("queued_at"),
        and_(Call.queued_at == bindparam("queued_at"), Call.id < bindparam("id")),
    )
    before = and_(Call.vip.is_(True), earlier) if vip else or_(Call.vip.is_(True), earlier)
    return select(func.count()).where(
        Call.queue == bindparam("queue"),
        Call.id != bindparam("id"),
        or_(Call.state == CallState.offered, and_(Call.state == CallState.queued, before)),
    )


_AHEAD = {vip: _ahead(vip=vip) for vip in (False, True)}


async def count_ahead(session: DbSession, call: Call) -> int:
    assert call.queued_at is not None
    params = {"queue": call.queue, "id": call.id, "queued_at": call.queued_at}
    return int(await session.scalar(_AHEAD[call.vip], params) or 0)


# --- what a call context needs besides the call's own row ---------------------------------------

_CALL_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_SOURCE, _TARGET, _BY = aliased(User), aliased(User), aliased(User)


def _trail() -> CompoundSelect[*tuple[Any, ...]]:
    """The calls' IVR steps, notes, transfers and fields asked again in one statement, oldest
    first, with the names of the people they name. Rows: kind ('step', 'note', 'transfer' or
    'asked'), call_id, at, id, then a, b, c (node, prompt, input | text | to_queue, note |
    field), then three (user id, display name) pairs (a note's author | a transfer's from and
    to agents and the supervisor who made it | the agent who asked, with no name), NULL where
    a kind has none."""
    no_text, no_id = null().cast(Text), null().cast(Integer)
    steps = select(
        literal("step"),
        IvrStep.call_id,
        IvrStep.at,
        IvrStep.id,
        IvrStep.node.cast(Text),
        IvrStep.prompt,
        IvrStep.input,
        no_id,
        no_text,
        no_id,
        no_text,
        no_id,
        no_text,
    ).where(IvrStep.call_id.in_(_CALL_IDS))
    notes = (
        select(
            literal("note"),
            Note.call_id,
            Note.at,
            Note.id,
            Note.text,
            no_text,
            no_text,
            Note.author_id,
            User.display_name,
            no_id,
            no_text,
            no_id,
            no_text,
        )
        .outerjoin(User, User.id == Note.author_id)
        .where(Note.call_id.in_(_CALL_IDS))
    )
    transfers = (
        select(
            literal("transfer"), Transfer.call_id, Transfer.at, Transfer.id,
            Transfer.to_queue.cast(Text), Transfer.note, no_text,
            Transfer.from_agent_id, _SOURCE.display_name, Transfer.to_agent_id, _TARGET.display_name,
            Transfer.by_id, _BY.display_name,
        )
        .outerjoin(_SOURCE, _SOURCE.id == Transfer.from_agent_id)
        .outerjoin(_TARGET, _TARGET.id == Transfer.to_agent_id)
        .outerjoin(_BY, _BY.id == Transfer.by_id)
        .where(Transfer.call_id.in_(_CALL_IDS))
    )  # fmt: skip
    asked = select(
        literal("asked"), AskedAgain.call_id, AskedAgain.at, AskedAgain.id,
        AskedAgain.field.cast(Text), no_text, no_text,
        AskedAgain.agent_id, no_text, no_id, no_text, no_id, no_text,
    ).where(AskedAgain.call_id.in_(_CALL_IDS))  # fmt: skip
    return union_all(steps, notes, transfers, asked).order_by(text("3"), text("4"))


_TRAIL = _trail()


async def trail(session: DbSession, call_ids: Collection[int]) -> Sequence[TrailRow]:
    """What happened to the calls, oldest first: see _trail for the rows."""
    rows = (await session.execute(_TRAIL, {"ids": list(call_ids)})).all()
    return [TrailRow(*row) for row in rows]


class TrailRow(NamedTuple):
    kind: str
    call_id: int
    at: datetime
    id: int
    a: str | None
    b: str | None
    c: str | None
    p: int | None
    p_name: str | None
    q: int | None
    q_name: str | None
    r: int | None
    r_name: str | None


def _history() -> Select[Call]:
    rank = (
        func.row_number()
        .over(partition_by=Call.customer_id, order_by=(Call.created_at.desc(), Call.id.desc()))
        .label("rank")
    )
    ranked = (
        select(Call.id, rank)
        .where(
            Call.customer_id.in_(bindparam("customer_ids", expanding=True)),
            Call.state.in_(FINAL_STATES),
        )
        .subquery()
    )
    return (
        select(Call)
        .join(ranked, ranked.c.id == Call.id)
        .where(ranked.c.rank <= bindparam("per_customer"))
        .order_by(Call.created_at.desc(), Call.id.desc())
    )


_HISTORY = _history()


async def history(
    session: DbSession, customer_ids: Collection[int], *, per_customer: int
) -> Sequence[Call]:
    """Each customer's newest calls in a final state, at most per_customer each, newest first."""
    params = {"customer_ids": list(customer_ids), "per_customer": per_customer}
    return (await session.scalars(_HISTORY, params)).all()


def _last_notes() -> Select[int, str, datetime, int | None, str]:
    """The newest note of each call, with its author's name."""
    rank = (
        func.row_number()
        .over(partition_by=Note.call_id, order_by=(Note.at.desc(), Note.id.desc()))
        .label("rank")
    )
    ranked = select(Note.id, rank).where(Note.call_id.in_(_CALL_IDS)).subquery()
    return (
        select(Note.call_id, Note.text, Note.at, Note.author_id, User.display_name)
        .join(ranked, ranked.c.id == Note.id)
        .outerjoin(User, User.id == Note.author_id)
        .where(ranked.c.rank == 1)
    )


_LAST_NOTES = _last_notes()


async def last_notes(
    session: DbSession, call_ids: Collection[int]
) -> Sequence[tuple[int, str, datetime, int | None, str | None]]:
    """(call_id, text, at, author id, author name) of each call's newest note."""
    if not call_ids:
        return []
    rows = (await session.execute(_LAST_NOTES, {"ids": list(call_ids)})).all()
    return [(int(c), str(t), a, p, n) for c, t, a, p, n in rows]


_EFFORT_TOTALS = (
    select(Call.customer_id, func.count(), func.sum(Call.effort_score))
    .where(
        Call.customer_id.in_(bindparam("customer_ids", expanding=True)),
        Call.effort_score.is_not(None),
    )
    .group_by(Call.customer_id)
)


async def effort_totals(
    session: DbSession, customer_ids: Collection[int]
) -> dict[int, tuple[int, float]]:
    """customer -> (calls over with a score, the sum of their scores)."""
    params = {"customer_ids": sorted(customer_ids)}
    rows = (await session.execute(_EFFORT_TOTALS, params)).all()
    return {int(c): (int(n), float(total or 0.0)) for c, n, total in rows}


_EARLIER_ABOUT = (
    select(Call)
    .where(
        Call.customer_id == bindparam("customer_id"),
        Call.intent == bindparam("intent"),
        Call.id != bindparam("id"),
        Call.state.in_(FINAL_STATES),
        Call.created_at >= bindparam("since"),
    )
    .order_by(Call.created_at.desc(), Call.id.desc())
    .limit(1)
)


async def earlier_about(
    session: DbSession, *, call: Call, intent: str, since: datetime
) -> Call | None:
    """The customer's newest call about the intent since `since` that is over, other than call."""
    params = {"customer_id": call.customer_id, "intent": intent, "id": call.id, "since": since}
    return await session.scalar(_EARLIER_ABOUT, params)


# The states in which a call is an agent's now: on offer to them, talking, or wrapping up.
SERVING_STATES = (CallState.offered, CallState.connected, CallState.wrapup)
_SERVES = (
    select(Call.id)
    .where(
        Call.agent_id == bindparam("agent_id"),
        Call.customer_id == bindparam("customer_id"),
        Call.state.in_(SERVING_STATES),
    )
    .limit(1)
)


async def serving(session: DbSession, *, agent_id: int, customer_id: int) -> int | None:
    """The call of the customer that the agent has on offer, on the line or in wrap-up now."""
    params = {"agent_id": agent_id, "customer_id": customer_id}
    found = await session.scalar(_SERVES, params)
    return None if found is None else int(found)
