"""The call context's assembly: the phone tree's path, notes, transfers, customer, history."""

from __future__ import annotations

from datetime import timedelta

from app.calls import context
from app.calls import repository as calls
from app.calls.models import IvrStep, Note, Transfer
from app.calls.states import CallState
from app.context import AppContext
from app.db import utcnow

from .factories import Factory


async def test_the_context_carries_the_trail_with_names_in_order(
    ctx: AppContext, make: Factory
) -> None:
    alice = await make.agent("alice")
    bob = await make.agent("bob")
    customer = await make.customer(segment="vip")
    call = await make.call(state=CallState.connected, customer_id=customer.id, agent_id=bob.id)
    now = utcnow()
    async with ctx.transaction() as session:
        session.add_all(
            [
                IvrStep(call_id=call.id, node="menu", prompt="Main menu", input="2", at=now),
                IvrStep(call_id=call.id, node="lang", prompt="Language", input="1", at=now - timedelta(seconds=5)),
                Note(call_id=call.id, author_id=alice.id, text="courier Friday", at=now),
                Transfer(call_id=call.id, from_agent_id=alice.id, to_agent_id=bob.id, to_queue=None, note="over to you", at=now),
            ]
        )  # fmt: skip

    async with ctx.reading() as session:
        loaded = await calls.get(session, call.id)
        assert loaded is not None
        found = await context.one(session, loaded)

    assert [s.node for s in found.ivr_path] == ["lang", "menu"]
    assert [(n.author.display_name if n.author else None, n.text) for n in found.notes] == [
        ("Alice", "courier Friday")
    ]
    [transfer] = found.transfers
    assert transfer.from_agent is not None and transfer.from_agent.id == alice.id
    assert transfer.to_agent is not None and transfer.to_agent.display_name == "Bob"
    assert found.customer is not None and found.customer.segment == "vip"
    assert found.state == CallState.connected and found.agent_id == bob.id


async def test_history_is_the_customers_earlier_final_calls_newest_first_at_most_five(
    ctx: AppContext, make: Factory
) -> None:
    customer = await make.customer()
    past = []
    for days in range(7, 0, -1):
        past.append(
            await make.call(
                state=CallState.ended,
                customer_id=customer.id,
                created_at=utcnow() - timedelta(days=days),
                disposition="resolved",
            )
        )
    await make.call(state=CallState.queued, customer_id=customer.id)  # live: not history
    call = await make.call(customer_id=customer.id)
    stranger = await make.call()

    async with ctx.reading() as session:
        found = await context.build(
            session, [c for c in [await calls.get(session, call.id), await calls.get(session, stranger.id)] if c]
        )  # fmt: skip

    assert [h.id for h in found[0].history] == [c.id for c in reversed(past)][:5]
    assert found[1].history == [] and found[1].customer is None


async def test_an_earlier_escalated_call_says_why_it_was_escalated(
    ctx: AppContext, make: Factory
) -> None:
    customer = await make.customer()
    await make.call(
        state=CallState.ended,
        customer_id=customer.id,
        intent=None,
        queue="escalations",
        escalation_reason="unscripted",
        waited_s=3600,
    )
    call = await make.call(customer_id=customer.id)

    async with ctx.reading() as session:
        loaded = await calls.get(session, call.id)
        assert loaded is not None
        found = await context.one(session, loaded)

    [earlier] = found.history
    assert earlier.intent is None
    assert (earlier.queue, earlier.escalation_reason) == ("escalations", "unscripted")
