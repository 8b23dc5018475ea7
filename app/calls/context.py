"""The call context: everything the caller told the phone tree, for one call or many at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from app.calls import effort
from app.calls import repository as calls
from app.calls.models import Call
from app.calls.schemas import (
    AskedAgainOut,
    Callback,
    CallContext,
    HistoryItem,
    Identity,
    NoteOut,
    Person,
    StepOut,
    TransferOut,
)
from app.calls.states import CallState
from app.customers import repository as customers
from app.customers.schemas import CustomerBrief, CustomerEffort
from app.db import DbSession, utcnow
from app.promises import repository as promises
from app.promises import service as promise_service
from app.promises.schemas import PromiseOut

HISTORY = 5
# Enough final calls per customer that an ended call still finds five that came before it.
HISTORY_WINDOW = 20
# The customer's promises a context carries (open ones first), and how much of an earlier
# call's last note: the context stays bounded (app/calls/bounds.py, SLACK_BYTES).
PROMISES = 5
NOTE_PREVIEW_CHARS = 280


@dataclass
class Related:
    """What contexts need beyond the calls' own rows, read in a handful of queries."""

    steps: dict[int, list[StepOut]] = field(default_factory=lambda: defaultdict(list))
    notes: dict[int, list[NoteOut]] = field(default_factory=lambda: defaultdict(list))
    transfers: dict[int, list[TransferOut]] = field(default_factory=lambda: defaultdict(list))
    customers: dict[int, CustomerBrief] = field(default_factory=dict)
    history: dict[int, list[Call]] = field(default_factory=lambda: defaultdict(list))
    asked: dict[int, list[AskedAgainOut]] = field(default_factory=lambda: defaultdict(list))
    last_notes: dict[int, NoteOut] = field(default_factory=dict)
    efforts: dict[int, CustomerEffort] = field(default_factory=dict)
    promises: dict[int, list[PromiseOut]] = field(default_factory=lambda: defaultdict(list))


async def build(session: DbSession, found: Sequence[Call]) -> list[CallContext]:
    """The contexts of the calls, in a handful of queries whatever their number."""
    if not found:
        return []
    related = await read_related(session, found)
    return [assemble(call, related) for call in found]


async def one(session: DbSession, call: Call) -> CallContext:
    return assemble(call, await read_related(session, [call]))


async def read_related(session: DbSession, found: Sequence[Call]) -> Related:
    out = Related()
    ids = [c.id for c in found]
    for row in await calls.trail(session, ids):
        if row.kind == "step":
            assert row.a is not None and row.b is not None
            out.steps[row.call_id].append(StepOut(node=row.a, prompt=row.b, input=row.c, at=row.at))
        elif row.kind == "asked":
            assert row.a is not None
            out.asked[row.call_id].append(AskedAgainOut(field=row.a, agent_id=row.p, at=row.at))
        elif row.kind == "note":
            assert row.a is not None
            author = _person(row.p, row.p_name)
            out.notes[row.call_id].append(NoteOut(author=author, text=row.a, at=row.at))
        else:
            out.transfers[row.call_id].append(
                TransferOut(
                    from_agent=_person(row.p, row.p_name),
                    to_queue=row.a,
                    to_agent=_person(row.q, row.q_name),
                    note=row.b,
                    at=row.at,
                    by=_person(row.r, row.r_name),
                )
            )
    customer_ids = {c.customer_id for c in found if c.customer_id is not None}
    if customer_ids:
        for customer in await customers.briefs(session, customer_ids):
            out.customers[customer.id] = CustomerBrief.model_validate(customer)
        for past in await calls.history(session, customer_ids, per_customer=HISTORY_WINDOW):
            assert past.customer_id is not None
            out.history[past.customer_id].append(past)
        earlier = {past.id for found_calls in out.history.values() for past in found_calls}
        for call_id, text, at, author_id, name in await calls.last_notes(session, earlier):
            cut = text if len(text) <= NOTE_PREVIEW_CHARS else text[: NOTE_PREVIEW_CHARS - 1] + "…"
            out.last_notes[call_id] = NoteOut(author=_person(author_id, name), text=cut, at=at)
        for customer_id, (n, total) in (await calls.effort_totals(session, customer_ids)).items():
            out.efforts[customer_id] = CustomerEffort(calls=n, score=round(total, 1))
        today = utcnow().date()
        rows = await promises.of_customers(session, customer_ids, per_customer=PROMISES)
        for promised in rows:
            out.promises[promised[0].customer_id].append(promise_service.to_out(promised, today))
    return out


def _person(user_id: int | None, display_name: str | None) -> Person | None:
    if user_id is None or display_name is None:
        return None
    return Person(id=user_id, display_name=display_name)


def assemble(call: Call, related: Related) -> CallContext:
    customer = related.customers.get(call.customer_id) if call.customer_id else None
    if customer is not None:
        customer = customer.model_copy(update={"effort": related.efforts.get(customer.id)})
    earlier = [
        HistoryItem(
            id=past.id,
            started_at=past.created_at,
            intent=past.intent,
            queue=past.queue,
            escalation_reason=past.escalation_reason,
            disposition=past.disposition,
            sentiment=past.sentiment,
            csat=past.csat,
            effort=past.effort_score,
            last_note=related.last_notes.get(past.id),
        )
        for past in related.history.get(call.customer_id or 0, [])
        if past.id != call.id and past.created_at <= call.created_at
    ][:HISTORY]
    now = utcnow()
    waited = wait_s(call, now)
    steps = related.steps.get(call.id, [])
    transfers = related.transfers.get(call.id, [])
    asked = related.asked.get(call.id, [])
    return CallContext(
        id=call.id,
        state=call.state,
        caller_number=call.caller_number,
        language=call.language,
        customer=customer,
        identity=Identity(
            verified=call.verified,
            method="account_pin" if call.verify_method == "account_pin" else None,
            verified_at=call.verified_at,
        ),
        intent=call.intent,
        queue=call.queue,
        escalation_reason=call.escalation_reason,
        utterance=call.utterance,
        collected=dict(call.collected or {}),
        ivr_path=list(steps),
        notes=list(related.notes.get(call.id, [])),
        transfers=list(transfers),
        history=earlier,
        agent_id=call.agent_id,
        created_at=call.created_at,
        queued_at=call.queued_at,
        connected_at=call.connected_at,
        ended_at=call.ended_at,
        disposition=call.disposition,
        sentiment=call.sentiment,
        csat=call.csat,
        had_to_repeat=call.had_to_repeat,
        offer_expires_at=call.offer_expires_at if call.state == CallState.offered else None,
        wait_s=waited,
        waiting_since=call.waiting_since,
        effort=effort.compute(
            call, steps=steps, transfers=transfers, asked_again=len(asked), wait_s=waited, now=now
        ),
        asked_again=list(asked),
        repeat_of=call.repeat_of,
        promises=list(related.promises.get(call.customer_id or 0, [])),
        callback=_callback(call),
    )


def _callback(call: Call) -> Callback | None:
    if call.callback_number is None or call.callback_requested_at is None:
        return None
    return Callback(
        number=call.callback_number,
        requested_at=call.callback_requested_at,
        called_back_at=call.called_back_at,
    )


def wait_s(call: Call, now: datetime) -> float | None:
    """The caller's wait: time queued before each answer, summed over every queue the call
    waited in, up to now while it waits. None for a call never queued. The one definition:
    the call context, the escalations, the phone tree's position, a customer's calls and the
    wall's figures all use it."""
    if call.waiting_since is not None:
        return max(0.0, round((now - call.waiting_since).total_seconds(), 1))
    if call.first_queued_at is None:
        return None
    return round(call.waited_s, 1)
