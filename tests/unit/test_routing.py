"""Routing in process: which call is offered to whom, and where a waiting caller stands."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.calls import repository as calls
from app.calls.states import CallState
from app.context import AppContext
from app.db import utcnow
from app.routing import service as routing
from app.uow import UnitOfWork
from app.users.models import AgentStatus

from .factories import Factory, InUow, state_of


async def match(in_uow: InUow, *, now: datetime | None = None) -> int:
    async def work(uow: UnitOfWork) -> int:
        return await routing.match(uow, now=now or utcnow())

    result: int = await in_uow(work)
    return result


async def test_vip_first_then_the_longest_waiting_to_the_longest_idle_skilled_agent(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    long_idle = await make.agent(idle_since=utcnow() - timedelta(minutes=10))
    await make.agent(idle_since=utcnow() - timedelta(minutes=1))
    waited_long = await make.call(waited_s=120)
    vip = await make.call(waited_s=5, vip=True)

    assert await match(in_uow) == 2

    assert await state_of(ctx, vip.id) == (CallState.offered, long_idle.id)
    state, agent = await state_of(ctx, waited_long.id)
    assert state == CallState.offered and agent not in (None, long_idle.id)


async def test_nobody_without_the_skill_and_one_offer_per_agent(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    await make.agent(skills=["loans"])
    cards = await make.agent(skills=["cards"])
    first = await make.call(queue="cards", waited_s=30)
    second = await make.call(queue="cards", waited_s=10)
    billing = await make.call(queue="billing", waited_s=60)

    assert await match(in_uow) == 1

    assert await state_of(ctx, first.id) == (CallState.offered, cards.id)
    assert await state_of(ctx, second.id) == (CallState.queued, None)
    assert await state_of(ctx, billing.id) == (CallState.queued, None)


async def test_an_agent_who_rejected_a_call_is_passed_over_for_another(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    rejecter = await make.agent(idle_since=utcnow() - timedelta(minutes=10))
    other = await make.agent(idle_since=utcnow())
    call = await make.call(rejected_by=[rejecter.id])

    assert await match(in_uow) == 1
    assert await state_of(ctx, call.id) == (CallState.offered, other.id)


async def test_a_call_rejected_by_the_only_free_agent_comes_back_to_them_after_a_while(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    rejected_at = utcnow()
    only = await make.agent(idle_since=rejected_at - timedelta(minutes=5))
    await make.agent(status=AgentStatus.busy)  # has the skill, but cannot take it
    call = await make.call(rejected_by=[only.id], rejected_at=rejected_at)
    wait = timedelta(seconds=ctx.settings.reoffer_after_s)

    # Not straight back: someone else may come free first.
    assert await match(in_uow, now=rejected_at + wait - timedelta(seconds=1)) == 0
    assert await state_of(ctx, call.id) == (CallState.queued, None)

    # Nobody did: the agent who rejected it gets it again rather than leaving the caller waiting.
    assert await match(in_uow, now=rejected_at + wait) == 1
    assert await state_of(ctx, call.id) == (CallState.offered, only.id)


async def test_another_agent_coming_free_takes_a_rejected_call_first(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    rejected_at = utcnow() - timedelta(minutes=5)
    rejecter = await make.agent(idle_since=rejected_at - timedelta(minutes=5))
    newcomer = await make.agent(idle_since=utcnow())
    call = await make.call(rejected_by=[rejecter.id], rejected_at=rejected_at)

    assert await match(in_uow) == 1
    assert await state_of(ctx, call.id) == (CallState.offered, newcomer.id)


async def test_callers_nobody_free_can_answer_hold_up_no_one_behind_them(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    # More calls than a match reads at first wait, longest of all, where no free agent serves.
    for _ in range(routing.FIRST_LOOK + 5):
        await make.call(queue="escalations", waited_s=600)
    billing = await make.agent(skills=["billing"])
    behind = await make.call(queue="billing", waited_s=5)

    assert await match(in_uow) == 1
    assert await state_of(ctx, behind.id) == (CallState.offered, billing.id)


async def test_an_agent_who_rejected_every_call_at_the_head_gets_the_next_one(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    picky = await make.agent()
    for _ in range(routing.FIRST_LOOK + 5):
        await make.call(waited_s=600, rejected_by=[picky.id], rejected_at=utcnow())
    behind = await make.call(waited_s=5)

    assert await match(in_uow) == 1
    assert await state_of(ctx, behind.id) == (CallState.offered, picky.id)


async def test_one_free_agent_and_a_long_queue_make_one_offer_to_the_longest_waiting(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    agent = await make.agent()
    longest = await make.call(waited_s=900)
    for n in range(routing.FIRST_LOOK * 2):
        await make.call(waited_s=600 - n)

    assert await match(in_uow) == 1
    assert await state_of(ctx, longest.id) == (CallState.offered, agent.id)


async def test_away_and_busy_agents_get_nothing(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    await make.agent(status=AgentStatus.away)
    await make.agent(status=AgentStatus.busy)
    call = await make.call()

    assert await match(in_uow) == 0
    assert await state_of(ctx, call.id) == (CallState.queued, None)


async def test_the_position_counts_offers_vips_and_earlier_calls_and_never_grows(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    await make.call(state=CallState.offered, waited_s=1)
    await make.call(waited_s=50)
    mine = await make.call(waited_s=40)
    await make.call(waited_s=30)  # behind
    await make.call(queue="cards", waited_s=90)  # another queue

    async def position(uow: UnitOfWork) -> int | None:
        call = await calls.get(uow.session, mine.id, lock=True)
        assert call is not None
        return await routing.position(uow, call)

    assert await in_uow(position) == 3
    # A vip caller joins ahead: the count grows, what the caller was told does not.
    await make.call(waited_s=1, vip=True)
    assert await in_uow(position) == 3
    # Once offered, the caller is next.
    async with ctx.transaction() as session:
        call = await calls.get(session, mine.id)
        assert call is not None
        call.state = CallState.offered
    assert await in_uow(position) == 1


async def test_the_queue_figures_say_why_callers_wait(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    async def reasons() -> dict[str, str | None]:
        async def work(uow: UnitOfWork) -> Any:
            return await routing.queue_stats(
                uow, queues=["billing", "cards", "loans"], now=utcnow()
            )

        return {q.name: q.reason for q in await in_uow(work)}

    await make.call(queue="loans")  # nobody has loans
    await make.agent(skills=["cards"], status=AgentStatus.busy)
    await make.call(queue="cards")  # the one cards agent is on a call
    rejecter = await make.agent(skills=["billing"])
    await make.call(queue="billing", rejected_by=[rejecter.id], rejected_at=utcnow())

    assert await reasons() == {"loans": "no_agents", "cards": "all_busy", "billing": "rejected"}
