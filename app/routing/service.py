"""Routing: the agent status machine, offers, claims, deadlines and queue order.

Every change here runs inside the caller's transaction and writes its events to the outbox.
Rows are locked (FOR UPDATE on PostgreSQL; SQLite transactions begin IMMEDIATE) before they are
judged, so that two instances can never hand one call to two agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias

from app.calls import context
from app.calls.models import Call, CallAgent, CallState
from app.calls.schemas import QueueStats
from app.context import AppContext
from app.db import UTCDateTime, after_commit, before_commit, utcnow
from app.realtime.outbox import emit
from app.users.models import AgentStatus, Role, User

# Statuses in which an agent holds an offer or a call (or its wrap-up): a status change asked
# for then waits until it ends.
ENGAGED = (AgentStatus.offered.value, AgentStatus.busy.value, AgentStatus.wrapup.value)
MATCH_BATCH = 200


def _ctx(session: AsyncSession) -> AppContext:
    ctx: AppContext = session.info["ctx"]
    return ctx


def wake_router(session: AsyncSession) -> None:
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


async def _match_now(session: AsyncSession) -> None:
    await match(session, now=utcnow())


def _whole_database_locked(session: AsyncSession) -> bool:
    """SQLite: every transaction begins IMMEDIATE and holds the write lock until it ends.

    No other writer can then change a row between our reads, and a session is one transaction,
    so a row already in the session is current: re-reading it to lock it would only cost time.
    """
    return session.get_bind().dialect.name == "sqlite"


async def lock_user(session: AsyncSession, user_id: int) -> User | None:
    if _whole_database_locked(session):
        return await session.get(User, user_id)
    query = (
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def lock_call(session: AsyncSession, call_id: int) -> Call | None:
    if _whole_database_locked(session):
        return await session.get(Call, call_id)
    query = (
        select(Call)
        .where(Call.id == call_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


def set_status(session: AsyncSession, user: User, status: str, now: datetime | None = None) -> None:
    if user.status == status:
        return
    user.status = status
    user.status_since = now or utcnow()
    if status != AgentStatus.wrapup.value:
        user.wrapup_until = None
    emit(session, "agent.status", {"user_id": user.id, "status": status}, user_id=user.id)
    if status == AgentStatus.available.value:
        wake_router(session)


async def request_status(session: AsyncSession, *, user: User, status: str) -> User:
    """The agent's own status switch; deferred while an offer or a call is theirs."""
    locked = await lock_user(session, user.id)
    assert locked is not None
    if locked.status in ENGAGED:
        locked.requested_status = status
    else:
        locked.requested_status = None
        set_status(session, locked, status)
    return locked


def release(session: AsyncSession, agent: User, *, reason: str, now: datetime) -> None:
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
        status = requested or AgentStatus.available.value
    agent.requested_status = None
    set_status(session, agent, status, now)


async def record_agent(session: AsyncSession, call_id: int, agent_id: int) -> None:
    """The agent may see this call and its customer from now on (one insert, kept if present)."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgres_insert
    await session.execute(
        insert(CallAgent)
        .values(call_id=call_id, agent_id=agent_id, at=utcnow())
        .on_conflict_do_nothing(index_elements=["call_id", "agent_id"])
    )


async def offer(session: AsyncSession, call: Call, agent: User, now: datetime) -> None:
    """Both rows are locked and checked by the caller: call queued or offered, agent free."""
    timeout = _ctx(session).settings.offer_timeout_s
    call.state = CallState.offered.value
    call.agent_id = agent.id
    call.offer_expires_at = now + timedelta(seconds=timeout)
    set_status(session, agent, AgentStatus.offered.value, now)
    await record_agent(session, call.id, agent.id)
    await session.flush()
    data = (await context.one(session, call)).model_dump(mode="json")
    data["offer_expires_at"] = call.offer_expires_at.isoformat()
    emit(session, "call.offered", data, user_id=agent.id)


def requeue(session: AsyncSession, call: Call, *, queue: str | None = None) -> None:
    """Back to a queue: its head when queue is None (queued_at kept), else the new queue's tail."""
    now = utcnow()
    if queue is not None:
        call.queue = queue
        call.queued_at = now
        call.announced_position = None
    call.state = CallState.queued.value
    call.agent_id = None
    call.offer_expires_at = None
    emit(
        session,
        "call.queued",
        {"call_id": call.id, "queue": call.queue, "escalation_reason": call.escalation_reason},
    )
    wake_router(session)


async def revoke_offer(session: AsyncSession, call: Call, *, reason: str, now: datetime) -> None:
    """End the offer the call holds; the agent is released as the reason says."""
    agent_id = call.agent_id
    call.offer_expires_at = None
    if agent_id is None:
        return
    emit(session, "call.offer_revoked", {"call_id": call.id, "reason": reason}, user_id=agent_id)
    agent = await lock_user(session, agent_id)
    if agent is not None and agent.status == AgentStatus.offered.value:
        release(session, agent, reason=reason, now=now)


async def match(session: AsyncSession, *, now: datetime) -> int:
    """Offer queued calls to free agents: vip first then longest waiting; skilled, longest idle.

    Rows another transaction holds are skipped (SKIP LOCKED), never waited on. Each call's
    agent is picked and locked by one query that reads a single row, whatever the number of
    agents signed in.
    """
    calls = await _queued_calls(session, queues=None)
    if len(calls) == MATCH_BATCH:
        # More may wait behind these: take the first calls that some free agent can answer.
        calls = await _queued_calls(session, queues=await _free_skills(session))
    offered = 0
    exhausted: set[str | None] = set()
    for call in calls:
        if call.queue in exhausted:
            continue
        agent = await _free_agent(session, queue=call.queue, rejected=call.rejected_by or [])
        if agent is None:
            if not call.rejected_by:
                exhausted.add(call.queue)
            continue
        await offer(session, call, agent, now)
        offered += 1
    return offered


def _skills(session: AsyncSession) -> TableValuedAlias:
    """The elements of users.skills as rows with a column `value`, on either database."""
    dialect = session.get_bind().dialect.name
    elements = func.json_each if dialect == "sqlite" else func.json_array_elements_text
    return elements(User.skills).table_valued("value").alias("skill")


async def _free_agent(
    session: AsyncSession, *, queue: str | None, rejected: list[int]
) -> User | None:
    """The longest idle available agent with the queue's skill, locked; None if there is none."""
    skill = _skills(session)
    query = select(User).where(
        User.role == Role.agent.value,
        User.status == AgentStatus.available.value,
        select(skill.c.value).where(skill.c.value == queue).exists(),
    )
    if rejected:
        query = query.where(User.id.not_in(rejected))
    query = (
        query.order_by(User.status_since, User.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _free_skills(session: AsyncSession) -> set[str]:
    skill = _skills(session)
    query = (
        select(skill.c.value)
        .select_from(User)
        .join(skill, true())
        .where(User.role == Role.agent.value, User.status == AgentStatus.available.value)
        .distinct()
    )
    return {str(v) for v in (await session.execute(query)).scalars()}


async def _queued_calls(session: AsyncSession, *, queues: set[str] | None) -> list[Call]:
    query = select(Call).where(Call.state == CallState.queued.value)
    if queues is not None:
        query = query.where(Call.queue.in_(queues))
    query = (
        query.order_by(Call.vip.desc(), Call.queued_at, Call.id)
        .limit(MATCH_BATCH)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(query)).scalars())


async def expire_offers(session: AsyncSession, *, now: datetime) -> int:
    """Revoke offers past their deadline: exactly once, whichever instance gets there first."""
    due = (
        (
            await session.execute(
                select(Call)
                .where(Call.state == CallState.offered.value, Call.offer_expires_at <= now)
                .order_by(Call.offer_expires_at)
                .limit(MATCH_BATCH)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    for call in due:
        await revoke_offer(session, call, reason="timeout", now=now)
        requeue(session, call)
    return len(due)


async def end_wrapups(session: AsyncSession, *, now: datetime) -> int:
    due = (
        (
            await session.execute(
                select(User)
                .where(User.status == AgentStatus.wrapup.value, User.wrapup_until <= now)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    for agent in due:
        agent.wrapup_until = None
        status = agent.requested_status or AgentStatus.available.value
        agent.requested_status = None
        set_status(session, agent, status, now)
    return len(due)


async def next_deadline(session: AsyncSession) -> datetime | None:
    offers = (
        await session.execute(
            select(func.min(Call.offer_expires_at)).where(Call.state == CallState.offered.value)
        )
    ).scalar_one_or_none()
    wrapups = (
        await session.execute(
            select(func.min(User.wrapup_until)).where(User.status == AgentStatus.wrapup.value)
        )
    ).scalar_one_or_none()
    found = [d for d in (offers, wrapups) if d is not None]
    if not found:
        return None
    # SQLite hands aggregates back as naive strings or datetimes, not through the column type.
    return min(_aware(d) for d in found)


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    result = UTCDateTime().process_result_value(value, None)
    assert result is not None
    return result


async def queue_stats(
    session: AsyncSession, *, queues: Sequence[str], now: datetime
) -> list[QueueStats]:
    waiting: dict[str | None, tuple[int, datetime | None]] = {}
    for name, count, oldest in await session.execute(
        select(Call.queue, func.count(Call.id), func.min(Call.queued_at))
        .where(Call.state == CallState.queued.value)
        .group_by(Call.queue)
    ):
        waiting[name] = (count, _aware(oldest) if oldest is not None else None)
    # Agents counted per skill in SQL: a few rows, not one per agent signed in.
    skill = _skills(session)
    available = func.sum(case((User.status == AgentStatus.available.value, 1), else_=0))
    per_skill = {
        name: (int(signed_in), int(free or 0))
        for name, signed_in, free in await session.execute(
            select(skill.c.value, func.count(), available)
            .select_from(User)
            .join(skill, true())
            .where(User.role == Role.agent.value, User.status != AgentStatus.offline.value)
            .group_by(skill.c.value)
        )
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


async def position(session: AsyncSession, call: Call) -> int | None:
    """1 + the calls of the same queue that will be offered before this one."""
    if call.state == CallState.offered.value:
        return 1
    if call.state != CallState.queued.value or call.queued_at is None:
        return None
    earlier = or_(
        Call.queued_at < call.queued_at,
        and_(Call.queued_at == call.queued_at, Call.id < call.id),
    )
    # Calls on offer are in front; then vip callers, then whoever has waited longer.
    before = and_(Call.vip.is_(True), earlier) if call.vip else or_(Call.vip.is_(True), earlier)
    ahead = (
        await session.execute(
            select(func.count(Call.id)).where(
                Call.queue == call.queue,
                Call.id != call.id,
                or_(
                    Call.state == CallState.offered.value,
                    and_(Call.state == CallState.queued.value, before),
                ),
            )
        )
    ).scalar_one()
    computed = ahead + 1
    # What the caller was told never grows, even if a vip caller joins ahead of them.
    if call.announced_position is None or computed < call.announced_position:
        call.announced_position = computed
    return call.announced_position
