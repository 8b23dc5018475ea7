"""Calls handed from one person to another: an agent's own status comes back as it was, and a
call an agent let go is not offered straight back to them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from app.calls import repository as calls
from app.calls import service
from app.calls.schemas import TransferIn
from app.calls.states import CallState
from app.context import AppContext
from app.customers import repository as customers_repository
from app.customers import service as customers_service
from app.uow import UnitOfWork
from app.users import repository as users
from app.users.models import AgentStatus, Role

from .factories import Factory, InUow, state_of, status_of


async def test_an_agent_on_a_break_is_on_it_again_after_a_supervisor_reassigns_her_offer(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    sup = await make.agent("boss", role=Role.supervisor, status=AgentStatus.offline, skills=[])
    carol = await make.agent("carol", status=AgentStatus.away, skills=["escalations", "billing"])
    bob = await make.agent("bob", status=AgentStatus.away, skills=["escalations"])
    escalation = await make.call(queue="escalations", escalation_reason="unscripted")

    async def assign(to: int) -> None:
        async def work(uow: UnitOfWork) -> None:
            call = await service.get_locked(uow, escalation.id)
            by = await users.get(uow.session, sup.id)
            assert by is not None
            await service.assign(uow, call=call, agent_id=to, by=by)

        await in_uow(work)

    await assign(carol.id)
    assert await state_of(ctx, escalation.id) == (CallState.offered, carol.id)
    await assign(bob.id)

    assert await state_of(ctx, escalation.id) == (CallState.offered, bob.id)
    assert await status_of(ctx, carol.id) == AgentStatus.away
    # On her break she is offered nothing, though a billing caller waits.
    billing = await make.call(queue="billing")
    assert await state_of(ctx, billing.id) == (CallState.queued, None)


async def connected(make: Factory, agent_id: int) -> int:
    call = await make.call(state=CallState.connected, queue="billing", agent_id=agent_id)
    return call.id


async def escalate(in_uow: InUow, call_id: int, agent_id: int) -> None:
    async def work(uow: UnitOfWork) -> None:
        call = await service.get_locked(uow, call_id)
        user = await users.get(uow.session, agent_id)
        assert user is not None
        await service.escalate(uow, call=call, user=user, reason="fraud_suspected")

    await in_uow(work)


async def test_an_escalation_goes_to_another_escalations_agent_not_back(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    senior = await make.agent("senior", status=AgentStatus.busy, skills=["billing", "escalations"])
    other = await make.agent("other", skills=["escalations"])
    call_id = await connected(make, senior.id)

    await escalate(in_uow, call_id, senior.id)

    assert await state_of(ctx, call_id) == (CallState.offered, other.id)
    assert await status_of(ctx, senior.id) == AgentStatus.available


async def test_an_escalation_waits_rather_than_bounce_to_the_agent_who_escalated_it(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    senior = await make.agent("senior", status=AgentStatus.busy, skills=["billing", "escalations"])
    call_id = await connected(make, senior.id)

    await escalate(in_uow, call_id, senior.id)

    assert await state_of(ctx, call_id) == (CallState.queued, None)
    assert await status_of(ctx, senior.id) == AgentStatus.available


async def test_the_wait_is_the_time_queued_before_each_answer_summed_over_queues(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    sup = await make.agent("boss", role=Role.supervisor, status=AgentStatus.offline, skills=[])
    alice = await make.agent("alice", status=AgentStatus.offered, skills=["billing"])
    bob = await make.agent("bob", status=AgentStatus.away, skills=["cards"])
    customer = await make.customer()
    call = await make.call(
        state=CallState.offered, agent_id=alice.id, waited_s=31, customer_id=customer.id
    )

    async def as_agent(agent_id: int, action: Callable[..., Awaitable[Any]], **kw: Any) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            locked = await service.get_locked(uow, call.id)
            user = await users.get(uow.session, agent_id)
            return await action(uow, call=locked, user=user, **kw)

        return await in_uow(work)

    answered = await as_agent(alice.id, service.accept)
    assert 31 <= answered.wait_s < 33 and answered.waiting_since is None

    # Talked to for a while, then sent on to cards: the wait goes on from 31 s, not from 0.
    moved = await as_agent(alice.id, service.transfer, data=TransferIn(queue="cards"))
    assert 31 <= moved.wait_s < 33 and moved.waiting_since is not None
    async with ctx.transaction() as session:
        waiting = await calls.get(session, call.id)
        assert waiting is not None and waiting.waiting_since is not None
        waiting.waiting_since -= timedelta(seconds=10)  # ten seconds in the cards queue

    async def position(uow: UnitOfWork) -> Any:
        return await service.position(uow, call=await service.get_locked(uow, call.id))

    assert 41 <= (await in_uow(position)).wait_s < 43

    async def assign_to_bob(uow: UnitOfWork) -> None:
        call_now = await service.get_locked(uow, call.id)
        by = await users.get(uow.session, sup.id)
        assert by is not None
        await service.assign(uow, call=call_now, agent_id=bob.id, by=by)

    await in_uow(assign_to_bob)
    answered = await as_agent(bob.id, service.accept)
    assert 41 <= answered.wait_s < 43

    # The same figure wherever it is shown: the customer's calls too.
    async with ctx.reading() as session:
        found = await customers_repository.get(session, customer.id)
        assert found is not None
        detail = await customers_service.detail(session, customer=found)
    [recent] = [c for c in detail.recent_calls if c.id == call.id]
    assert recent.wait_s == answered.wait_s
