"""Calls handed from one person to another: an agent's own status comes back as it was, and a
call an agent let go is not offered straight back to them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.calls import repository as calls
from app.calls import service
from app.calls.states import CallState
from app.context import AppContext
from app.uow import UnitOfWork
from app.users import repository as users
from app.users.models import AgentStatus

from .factories import Factory

InUow = Callable[[Callable[[UnitOfWork], Awaitable[Any]]], Awaitable[Any]]


async def status_of(ctx: AppContext, user_id: int) -> AgentStatus:
    async with ctx.reading() as session:
        user = await users.get(session, user_id)
        assert user is not None
        return user.status


async def state_of(ctx: AppContext, call_id: int) -> tuple[CallState, int | None]:
    async with ctx.reading() as session:
        call = await calls.get(session, call_id)
        assert call is not None
        return call.state, call.agent_id


async def test_an_agent_on_a_break_is_on_it_again_after_a_supervisor_reassigns_her_offer(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    carol = await make.agent("carol", status=AgentStatus.away, skills=["escalations", "billing"])
    bob = await make.agent("bob", status=AgentStatus.away, skills=["escalations"])
    escalation = await make.call(queue="escalations", escalation_reason="unscripted")

    async def assign(to: int) -> None:
        async def work(uow: UnitOfWork) -> None:
            call = await service.get_locked(uow, escalation.id)
            await service.assign(uow, call=call, agent_id=to)

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
