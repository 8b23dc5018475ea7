"""Routing: the agent status machine, offers, claims, deadlines and queue order.

Every change here runs inside the caller's transaction and writes its events to the outbox.
Rows are locked (FOR UPDATE on PostgreSQL; SQLite transactions begin IMMEDIATE) before they are
judged, so that two instances can never hand one call to two agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from app.calls import context
from app.calls import repository as calls
from app.calls.models import CallState
from app.calls.repository import CallRow
from app.calls.schemas import QueueStats
from app.context import AppContext
from app.db import Unit, after_commit, before_commit, utcnow
from app.realtime.outbox import RawJson, emit
from app.sql import Db, Sql
from app.users import repository as users
from app.users.models import AgentStatus, Role
from app.users.repository import UserRow

# Statuses in which an agent holds an offer or a call (or its wrap-up): a status change asked
# for then waits until it ends.
ENGAGED = (AgentStatus.offered.value, AgentStatus.busy.value, AgentStatus.wrapup.value)
MATCH_BATCH = 200

_AGENT = Role.agent.value
_AVAILABLE = AgentStatus.available.value
_QUEUED = CallState.queued.value
_OFFERED = CallState.offered.value


def _ctx(session: Unit) -> AppContext:
    ctx: AppContext = session.info["ctx"]
    return ctx


def wake_router(session: Unit) -> None:
    """A call was queued or an agent freed: offer what can be offered before this commit.

    Matching in the same transaction puts the offer in the same commit as the change that made
    it possible, so the screen pop waits for no second transaction. The router is woken too,
    after commit: it catches what this transaction could not see (rows another transaction
    held) and publishes the queue figures.
    """
    ctx = session.info.get("ctx")
    if ctx is None:
        return
    before_commit(session, "match", _match_now)
    wake = getattr(ctx, "wake_router", None)
    if wake is not None:
        after_commit(session, "wake_router", wake)


async def _match_now(session: Unit) -> None:
    await match(session, now=utcnow())


async def match_pending(session: Unit) -> None:
    """Make the offers that wake_router left for the commit now (the handoff tells the caller
    where they stand, and a call on offer is first with no count to make)."""
    hooks: dict[str, object] = session.info.get("before_commit", {})
    if hooks.pop("match", None) is not None:
        await _match_now(session)


async def lock_user(session: Unit, user_id: int) -> UserRow | None:
    return await users.get(await Db.of(session), user_id, lock=True)


async def lock_call(session: Unit, call_id: int) -> CallRow | None:
    return await calls.get(await Db.of(session), call_id, lock=True)


def set_status(session: Unit, user: UserRow, status: str, now: datetime | None = None) -> None:
    if user.status == status:
        return
    user.status = status
    user.status_since = now or utcnow()
    if status != AgentStatus.wrapup.value and user.wrapup_until is not None:
        user.wrapup_until = None
    emit(session, "agent.status", {"user_id": user.id, "status": status}, user_id=user.id)
    if status == _AVAILABLE:
        wake_router(session)


async def request_status(session: Unit, *, user: UserRow, status: str) -> UserRow:
    """The agent's own status switch; deferred while an offer or a call is theirs."""
    locked = await lock_user(session, user.id)
    assert locked is not None
    if locked.status in ENGAGED:
        locked.requested_status = status
    else:
        if locked.requested_status is not None:
            locked.requested_status = None
        set_status(session, locked, status)
    return locked


def release(session: Unit, agent: UserRow, *, reason: str, now: datetime) -> None:
    """The agent's offer or call ended. reason: timeout, wrap, reject, revoked."""
    requested = agent.requested_status
    if reason == "timeout":
        # Nobody answered: keep calls away from an empty desk until the agent comes back.
        status = AgentStatus.offline.value if requested == "offline" else AgentStatus.away.value
    elif reason == "wrap" and _ctx(session).settings.wrapup_s > 0:
        set_status(session, agent, AgentStatus.wrapup.value, now)
        agent.wrapup_until = now + timedelta(seconds=_ctx(session).settings.wrapup_s)
        return
    else:
        status = requested or _AVAILABLE
    if requested is not None:
        agent.requested_status = None
    set_status(session, agent, status, now)


async def offer(session: Unit, call: CallRow, agent: UserRow, now: datetime) -> None:
    """Both rows are locked and checked by the caller: call queued or offered, agent free."""
    timeout = _ctx(session).settings.offer_timeout_s
    # First, while neither row has changes to write: the offer's changes then go out with the
    # next write of the row (the handoff's position, the commit), not in an UPDATE of their own.
    await calls.record_agent(await Db.of(session), call_id=call.id, agent_id=agent.id)
    call.state = _OFFERED
    call.agent_id = agent.id
    call.offer_expires_at = now + timedelta(seconds=timeout)
    # The context carries offer_expires_at while the call is offered.
    data = RawJson((await context.one(session, call)).model_dump_json())
    emit(session, "call.offered", data, user_id=agent.id)
    # After the offer: the agent's socket sends events in order, and the screen pop is the one
    # the agent waits for (sent behind agent.status, it waited for that send, some 0.1 ms).
    set_status(session, agent, AgentStatus.offered.value, now)


def requeue(session: Unit, call: CallRow, *, queue: str | None = None) -> None:
    """Back to a queue: its head when queue is None (queued_at kept), else the new queue's tail."""
    if queue is not None:
        call.queue = queue
        call.queued_at = utcnow()
        call.announced_position = None
    call.state = _QUEUED
    call.agent_id = None
    call.offer_expires_at = None
    emit(
        session,
        "call.queued",
        {"call_id": call.id, "queue": call.queue, "escalation_reason": call.escalation_reason},
    )
    wake_router(session)


async def revoke_offer(session: Unit, call: CallRow, *, reason: str, now: datetime) -> None:
    """End the offer the call holds; the agent is released as the reason says."""
    agent_id = call.agent_id
    call.offer_expires_at = None
    if agent_id is None:
        return
    emit(session, "call.offer_revoked", {"call_id": call.id, "reason": reason}, user_id=agent_id)
    agent = await lock_user(session, agent_id)
    if agent is not None and agent.status == AgentStatus.offered.value:
        release(session, agent, reason=reason, now=now)


async def match(session: Unit, *, now: datetime) -> int:
    """Offer queued calls to free agents: vip first then longest waiting; skilled, longest idle.

    Rows another transaction holds are skipped (SKIP LOCKED), never waited on. Each call's
    agent is picked and locked by one query that reads a single row, whatever the number of
    agents signed in.
    """
    db = await Db.of(session)
    queued = await _queued_calls(db, queues=None)
    if len(queued) == MATCH_BATCH:
        # More may wait behind these: take the first calls that some free agent can answer.
        queued = await _queued_calls(db, queues=await _free_skills(db))
    offered = 0
    exhausted: set[str | None] = set()
    for call in queued:
        if call.queue in exhausted:
            continue
        agent = await _free_agent(db, queue=call.queue, rejected=call.rejected_by or [])
        if agent is None:
            if not call.rejected_by:
                exhausted.add(call.queue)
            continue
        await offer(session, call, agent, now)
        offered += 1
    return offered


_FREE_AGENT = f"""
    SELECT {UserRow.columns()} FROM users
    WHERE role = '{_AGENT}' AND status = '{_AVAILABLE}'
      AND EXISTS (SELECT 1 FROM {{skills}} WHERE skill.value = :queue)
      {{rejected}}
    ORDER BY status_since, id LIMIT 1 {{skip_locked}}
    """
_FREE_AGENT_SQL = Sql(_FREE_AGENT.replace("{rejected}", ""), reads=("users",))
_FREE_AGENT_NOT_SQL = Sql(
    _FREE_AGENT.replace("{rejected}", "AND id NOT IN {ids}"), reads=("users",)
)
_FREE_SKILLS = Sql(
    f"""
    SELECT DISTINCT skill.value FROM users, {{skills}}
    WHERE users.role = '{_AGENT}' AND users.status = '{_AVAILABLE}'
    """,
    reads=("users",),
)
_QUEUED_CALLS = f"""
    SELECT {CallRow.columns()} FROM calls WHERE state = '{_QUEUED}' {{queues}} {{held}}
    ORDER BY vip DESC, queued_at, id LIMIT {MATCH_BATCH} {{skip_locked}}
    """


def _queued_sql(*, in_queues: bool, held: bool) -> Sql:
    text = _QUEUED_CALLS.replace("{queues}", "AND queue IN {names}" if in_queues else "")
    if held:
        # The calls this transaction holds unwritten are left out, and judged as they are here.
        return Sql(text.replace("{held}", "AND id NOT IN {ids}"), reads=())
    return Sql(text.replace("{held}", ""), reads=("calls",))


_QUEUED_SQL = {
    (q, h): _queued_sql(in_queues=q, held=h) for q in (False, True) for h in (False, True)
}


async def _free_agent(db: Db, *, queue: str | None, rejected: list[int]) -> UserRow | None:
    """The longest idle available agent with the queue's skill, locked; None if there is none."""
    if rejected:
        found = await db.row(_FREE_AGENT_NOT_SQL, {"queue": queue, "ids": db.ids(rejected)})
    else:
        found = await db.row(_FREE_AGENT_SQL, {"queue": queue})
    return None if found is None else UserRow.load(db, found)


async def _free_skills(db: Db) -> set[str]:
    return {str(v) for (v,) in await db.rows(_FREE_SKILLS)}


async def _queued_calls(db: Db, *, queues: set[str] | None) -> list[CallRow]:
    """Queued calls in the order they are offered, the first MATCH_BATCH (of `queues`).

    The calls this transaction has changed and not yet written (the one just handed off) are
    taken as they are here rather than written first for the query to read: their UPDATE then
    goes out once, with the offer's changes.
    """
    held = [row for row in db.pending if isinstance(row, CallRow)]
    params: dict[str, object] = {}
    if queues is not None:
        params["names"] = db.names(sorted(queues))
    if held:
        params["ids"] = db.ids(row.id for row in held)
    rows = await db.rows(_QUEUED_SQL[queues is not None, bool(held)], params)
    found = [CallRow.load(db, r) for r in rows]
    mine = [row for row in held if row.state == _QUEUED and (queues is None or row.queue in queues)]
    if not mine:
        return found
    found.extend(mine)
    found.sort(key=lambda call: (not call.vip, call.queued_at, call.id))
    return found[:MATCH_BATCH]


_DUE_OFFERS = Sql(
    f"""
    SELECT {CallRow.columns()} FROM calls
    WHERE state = '{_OFFERED}' AND offer_expires_at <= :now
    ORDER BY offer_expires_at LIMIT {MATCH_BATCH} {{skip_locked}}
    """
)
_DUE_WRAPUPS = Sql(
    f"""
    SELECT {UserRow.columns()} FROM users
    WHERE status = '{AgentStatus.wrapup.value}' AND wrapup_until <= :now {{skip_locked}}
    """
)
_NEXT_OFFER = Sql(f"SELECT min(offer_expires_at) FROM calls WHERE state = '{_OFFERED}'")
_NEXT_WRAPUP = Sql(
    f"SELECT min(wrapup_until) FROM users WHERE status = '{AgentStatus.wrapup.value}'"
)


async def expire_offers(session: Unit, *, now: datetime) -> int:
    """Revoke offers past their deadline: exactly once, whichever instance gets there first."""
    db = await Db.of(session)
    due = [CallRow.load(db, r) for r in await db.rows(_DUE_OFFERS, {"now": db.ts(now)})]
    for call in due:
        await revoke_offer(session, call, reason="timeout", now=now)
        requeue(session, call)
    return len(due)


async def end_wrapups(session: Unit, *, now: datetime) -> int:
    db = await Db.of(session)
    due = [UserRow.load(db, r) for r in await db.rows(_DUE_WRAPUPS, {"now": db.ts(now)})]
    for agent in due:
        agent.wrapup_until = None
        status = agent.requested_status or _AVAILABLE
        agent.requested_status = None
        set_status(session, agent, status, now)
    return len(due)


async def next_deadline(session: Unit) -> datetime | None:
    db = await Db.of(session)
    found = [db.dt(await db.value(_NEXT_OFFER)), db.dt(await db.value(_NEXT_WRAPUP))]
    deadlines = [d for d in found if d is not None]
    return min(deadlines) if deadlines else None


_WAITING = Sql(
    f"SELECT queue, count(*), min(queued_at) FROM calls WHERE state = '{_QUEUED}' GROUP BY queue"
)
# Agents counted per skill in SQL: a few rows, not one per agent signed in.
_PER_SKILL = Sql(
    f"""
    SELECT skill.value, count(*),
        sum(CASE WHEN users.status = '{_AVAILABLE}' THEN 1 ELSE 0 END)
    FROM users, {{skills}}
    WHERE users.role = '{_AGENT}' AND users.status != '{AgentStatus.offline.value}'
    GROUP BY skill.value
    """
)


async def queue_stats(session: Unit, *, queues: Sequence[str], now: datetime) -> list[QueueStats]:
    db = await Db.of(session)
    waiting: dict[str | None, tuple[int, datetime | None]] = {
        name: (int(count), db.dt(oldest)) for name, count, oldest in await db.rows(_WAITING)
    }
    per_skill = {
        str(name): (int(signed_in), int(free or 0))
        for name, signed_in, free in await db.rows(_PER_SKILL)
    }
    names = list(dict.fromkeys([*queues, *sorted(k for k in waiting if k is not None)]))
    out = []
    for name in names:
        count, oldest = waiting.get(name, (0, None))
        signed_in, free = per_skill.get(name, (0, 0))
        out.append(
            QueueStats(
                name=name,
                waiting=count,
                longest_wait_s=round((now - oldest).total_seconds(), 1) if oldest else 0.0,
                agents_available=free,
                agents_signed_in=signed_in,
            )
        )
    return out


# Calls on offer are in front; then vip callers, then whoever has waited longer.
_AHEAD = f"""
    SELECT count(*) FROM calls
    WHERE queue = :queue AND id != :id AND (
        state = '{_OFFERED}' OR (state = '{_QUEUED}' AND {{before}})
    )
    """
_EARLIER = "(queued_at < :queued_at OR (queued_at = :queued_at AND id < :id))"
_AHEAD_OF_VIP = Sql(_AHEAD.replace("{before}", f"vip = TRUE AND {_EARLIER}"), reads=("calls",))
_AHEAD_OF_OTHER = Sql(_AHEAD.replace("{before}", f"(vip = TRUE OR {_EARLIER})"), reads=("calls",))


async def position(session: Unit, call: CallRow) -> int | None:
    """1 + the calls of the same queue that will be offered before this one."""
    if call.state == _OFFERED:
        # Announced, so that a caller whose offer ends is never told a larger number after.
        if call.announced_position != 1:
            call.announced_position = 1
        return 1
    if call.state != _QUEUED or call.queued_at is None:
        return None
    db = await Db.of(session)
    ahead = await db.value(
        _AHEAD_OF_VIP if call.vip else _AHEAD_OF_OTHER,
        {"queue": call.queue, "id": call.id, "queued_at": db.ts(call.queued_at)},
    )
    computed = int(ahead) + 1
    # What the caller was told never grows, even if a vip caller joins ahead of them.
    if call.announced_position is None or computed < call.announced_position:
        call.announced_position = computed
    return call.announced_position
