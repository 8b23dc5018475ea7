"""Routing: the agent status machine, offers, claims, deadlines and queue order.

Every change here runs in the caller's unit of work and queues the events it causes. Rows are
locked (FOR UPDATE on PostgreSQL; on SQLite every transaction begins IMMEDIATE) before they
are judged, so that two instances can never hand one call to two agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from app.audit import service as audit
from app.calls import context
from app.calls import repository as calls
from app.calls.models import Call
from app.calls.schemas import QueueStats, WaitReason
from app.calls.states import CallState
from app.db import utcnow
from app.metrics.service import count_offer
from app.uow import RawJson, UnitOfWork
from app.users import repository as users
from app.users.models import AgentStatus, User

# Statuses in which an agent holds an offer or a call (or its wrap-up): a status change asked
# for then waits until it ends.
ENGAGED = (AgentStatus.offered, AgentStatus.busy, AgentStatus.wrapup)
MATCH_BATCH = 200
# Queued calls read at first by a match: enough for the usual few free agents. Only when all of
# them are taken by calls no free agent can answer, and someone is free still, does the match
# read further, in the queues that free agents serve.
FIRST_LOOK = 20


def wake_router(uow: UnitOfWork) -> None:
    """A call was queued or an agent freed: offer what can be offered before this commits.

    Matching in the same transaction puts the offer in the same commit as the change that made
    it possible, so the screen pop waits for no second transaction. The routing loop is woken
    too, after commit: it catches what this transaction could not see (rows another
    transaction held) and publishes the queue figures.
    """
    uow.before_commit(match_now)
    uow.after_commit(uow.ctx.wake_router)


async def match_now(uow: UnitOfWork) -> None:
    await match(uow, now=utcnow())


def set_status(
    uow: UnitOfWork,
    user: User,
    status: AgentStatus,
    now: datetime,
    *,
    wrapup_until: datetime | None = None,
) -> None:
    """wrapup_until: when after-call work ends (status wrapup only), for the agent's countdown.
    An agent already in wrapup (the caller hung up first) who wraps gets their deadline now."""
    until = wrapup_until if status == AgentStatus.wrapup else None
    if user.status == status and user.wrapup_until == until:
        return
    if user.status != status:
        user.status = status
        user.status_since = now
    user.wrapup_until = until
    data: dict[str, object] = {"user_id": user.id, "status": status.value}
    if user.wrapup_until is not None:
        data["wrapup_until"] = user.wrapup_until.isoformat()
    uow.emit("agent.status", data, user_id=user.id)
    if status == AgentStatus.available:
        wake_router(uow)


async def lock_user(uow: UnitOfWork, user_id: int) -> User:
    user = await users.get(uow.session, user_id, lock=True)
    assert user is not None, "users are never deleted"
    return user


async def request_status(uow: UnitOfWork, *, user: User, status: AgentStatus) -> User:
    """The agent's own status switch; deferred while an offer or a call is theirs."""
    locked = await lock_user(uow, user.id)
    if locked.status in ENGAGED:
        locked.requested_status = status
    else:
        locked.requested_status = None
        set_status(uow, locked, status, utcnow())
    return locked


def release(uow: UnitOfWork, agent: User, *, reason: str, now: datetime) -> None:
    """The agent's offer or call ended. reason: timeout, wrap, reject, revoked."""
    requested = agent.requested_status
    wrapup_s = uow.ctx.settings.wrapup_s
    if reason == "timeout":
        # Nobody answered: keep calls away from an empty desk until the agent comes back.
        status = AgentStatus.offline if requested == AgentStatus.offline else AgentStatus.away
    elif reason == "wrap" and wrapup_s > 0:
        until = now + timedelta(seconds=wrapup_s)
        set_status(uow, agent, AgentStatus.wrapup, now, wrapup_until=until)
        return
    else:
        status = requested or AgentStatus.available
    agent.requested_status = None
    set_status(uow, agent, status, now)


async def offer(uow: UnitOfWork, call: Call, agent: User, now: datetime) -> None:
    """Both rows are locked and checked by the caller: call queued or offered, agent free."""
    await calls.record_agent(uow.session, call_id=call.id, agent_id=agent.id)
    call.move_to(CallState.offered)
    call.offers += 1
    call.agent_id = agent.id
    call.offer_expires_at = now + timedelta(seconds=uow.ctx.settings.offer_timeout_s)
    if agent.status == AgentStatus.away and agent.requested_status is None:
        # A supervisor's assignment reaches an agent on a break: the break resumes once the
        # offer or the call ends, whoever ends it.
        agent.requested_status = AgentStatus.away
    # The context carries offer_expires_at while the call is offered.
    data = RawJson((await context.one(uow.session, call)).model_dump_json())
    uow.emit("call.offered", data, user_id=agent.id)
    count_offer(uow, "made")
    # After the offer: the agent's socket sends events in order, and the screen pop is the one
    # the agent waits for.
    set_status(uow, agent, AgentStatus.offered, now)


def requeue(uow: UnitOfWork, call: Call, *, queue: str | None = None) -> None:
    """Back to a queue: its head when queue is None (queued_at kept), else the new queue's tail."""
    if queue is not None:
        call.queue = queue
        call.queued_at = utcnow()
        call.announced_position = None
        call.start_waiting(call.queued_at)
    if call.state != CallState.queued:  # a queued call moved by a supervisor stays queued
        call.move_to(CallState.queued)
    call.agent_id = None
    call.offer_expires_at = None
    uow.emit(
        "call.queued",
        {"call_id": call.id, "queue": call.queue, "escalation_reason": call.escalation_reason},
    )
    wake_router(uow)


async def revoke_offer(
    uow: UnitOfWork, call: Call, *, reason: str, now: datetime, by: User | None = None
) -> None:
    """End the offer the call holds; the agent is released as the reason says. by: the
    supervisor whose move revoked it, for the audit trail."""
    agent_id = call.agent_id
    call.offer_expires_at = None
    if agent_id is None:
        return
    uow.emit("call.offer_revoked", {"call_id": call.id, "reason": reason}, user_id=agent_id)
    count_offer(uow, "expired" if reason == "timeout" else "withdrawn")
    agent = await lock_user(uow, agent_id)
    if agent.status == AgentStatus.offered:
        release(uow, agent, reason=reason, now=now)
        audit.status_forced(uow.session, agent, was="offered", reason=reason, call=call, by=by)


async def match(uow: UnitOfWork, *, now: datetime) -> int:
    """Offer queued calls to free agents: vip first then longest waiting; skilled, longest idle.

    Rows another transaction holds are skipped (SKIP LOCKED), never waited for. Each call's
    agent is picked and locked by one query that reads a single row, whatever the number of
    agents signed in.
    """
    session = uow.session
    # Every agent busy, however long the queues: one read of an index, not of the waiting calls.
    if not await users.any_available(session):
        return 0
    matching = _Matching(uow, now)
    heads = await calls.queued(session, queues=None, limit=FIRST_LOOK)
    await matching.offer_each(heads)
    if len(heads) == FIRST_LOOK and await users.any_available(session):
        # More wait behind these, and someone is still free: the first calls that some free
        # agent can answer. Calls of a queue nobody free serves are never read past the first
        # look, however many of them wait.
        skills = await users.free_skills(session)
        await matching.offer_each(await calls.queued(session, queues=skills, limit=MATCH_BATCH))
    return matching.offered


class _Matching:
    """One pass of match over the heads of the queues, in offer order."""

    def __init__(self, uow: UnitOfWork, now: datetime) -> None:
        self.uow = uow
        self.now = now
        self.offered = 0
        # Queues with no free agent left for a call that rejected nobody.
        self.exhausted: set[str] = set()
        self.reoffer_after = timedelta(seconds=uow.ctx.settings.reoffer_after_s)

    async def offer_each(self, heads: Sequence[calls.QueuedCall]) -> None:
        for head in heads:
            if head.queue is None or head.queue in self.exhausted:
                continue
            agent = await self._agent_for(head, head.queue)
            if agent is None:
                continue
            # Locked by the read of the heads: the session's own copy if it holds the call,
            # else a read.
            call = await calls.get(self.uow.session, head.id)
            assert call is not None, "a locked row cannot be deleted"
            await offer(self.uow, call, agent, self.now)
            self.offered += 1

    async def _agent_for(self, head: calls.QueuedCall, queue: str) -> User | None:
        session = self.uow.session
        rejected = [int(i) for i in head.rejected_by or []]
        agent = None
        if head.prefer_agent_id is not None and head.prefer_agent_id not in rejected:
            # A repeat caller goes first to the agent who handled their earlier call, when that
            # agent is free and has the skill; else to whoever the usual rule picks.
            agent = await users.free_agent(session, queue=queue, only=head.prefer_agent_id)
        if agent is None:
            agent = await users.free_agent(session, queue=queue, excluding=rejected)
        if (
            agent is None
            and rejected
            and _may_reoffer(head.rejected_at, self.now, self.reoffer_after)
        ):
            # Nobody else can take it: back to whoever of those who rejected it is free.
            agent = await users.free_agent(session, queue=queue)
        if agent is None and not rejected:
            self.exhausted.add(queue)
        return agent


def _may_reoffer(rejected_at: datetime | None, now: datetime, after: timedelta) -> bool:
    """A call whose rejecters are the only agents left: due again to them once `after` has
    passed since the last rejection (the routing loop's passes, at least every poll interval,
    find it then)."""
    return rejected_at is None or now >= rejected_at + after


async def expire_offers(uow: UnitOfWork, *, now: datetime) -> int:
    """Revoke offers past their deadline: exactly once, whichever instance gets there first."""
    due = await calls.due_offers(uow.session, now=now, limit=MATCH_BATCH)
    for call in due:
        await revoke_offer(uow, call, reason="timeout", now=now)
        requeue(uow, call)
    return len(due)


async def end_wrapups(uow: UnitOfWork, *, now: datetime) -> int:
    due = await users.due_wrapups(uow.session, now=now)
    for agent in due:
        agent.wrapup_until = None
        status = agent.requested_status or AgentStatus.available
        agent.requested_status = None
        set_status(uow, agent, status, now)
    return len(due)


async def next_deadline(uow: UnitOfWork) -> datetime | None:
    found = [
        await calls.next_offer_expiry(uow.session),
        await users.next_wrapup_end(uow.session),
    ]
    deadlines = [d for d in found if d is not None]
    return min(deadlines) if deadlines else None


async def queue_stats(uow: UnitOfWork, *, queues: Sequence[str], now: datetime) -> list[QueueStats]:
    waiting = await calls.waiting(uow.session)
    per_skill = await users.per_skill(uow.session)
    names = list(dict.fromkeys([*queues, *sorted(waiting)]))
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
                reason=_wait_reason(count, signed_in=signed_in, free=free),
            )
        )
    return out


def _wait_reason(waiting: int, *, signed_in: int, free: int) -> WaitReason | None:
    """Why callers wait. With an agent free they would have been offered in the commit that
    queued them or freed the agent: so the free agents rejected them."""
    if not waiting:
        return None
    if not signed_in:
        return "no_agents"
    return "rejected" if free else "all_busy"


async def position(uow: UnitOfWork, call: Call) -> int | None:
    """1 + the calls of the same queue that will be offered before this one; what the caller
    is told never grows, even if a vip caller joins ahead of them."""
    if call.state == CallState.offered:
        call.announced_position = 1
        return 1
    if call.state != CallState.queued or call.queued_at is None:
        return None
    computed = await calls.count_ahead(uow.session, call) + 1
    if call.announced_position is None or computed < call.announced_position:
        call.announced_position = computed
    return call.announced_position
