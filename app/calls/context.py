"""The call context: everything the caller told the phone tree, built for many calls at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Integer,
    Text,
    bindparam,
    cast,
    event,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from app.calls.models import FINAL_STATES, Call, IvrStep, Note, Transfer
from app.calls.schemas import (
    CallContext,
    HistoryItem,
    Identity,
    NoteOut,
    Person,
    StepOut,
    TransferOut,
)
from app.customers.models import Customer
from app.customers.schemas import CustomerBrief
from app.users.models import User

HISTORY = 5
# Enough final calls per customer that an ended call still finds five that came before it.
HISTORY_WINDOW = 20


class _Step(NamedTuple):
    node: str
    prompt: str
    input: str | None
    at: datetime


class _Note(NamedTuple):
    author_id: int | None
    text: str
    at: datetime


class _Transfer(NamedTuple):
    from_agent_id: int | None
    to_queue: str | None
    to_agent_id: int | None
    note: str | None
    at: datetime


@dataclass
class _Related:
    """What a context needs beyond the call's own row, for one or many calls."""

    steps: dict[int, list[_Step]] = field(default_factory=lambda: defaultdict(list))
    notes: dict[int, list[_Note]] = field(default_factory=lambda: defaultdict(list))
    transfers: dict[int, list[_Transfer]] = field(default_factory=lambda: defaultdict(list))
    people: dict[int, Person] = field(default_factory=dict)
    customers: dict[int, Customer] = field(default_factory=dict)
    history: dict[int, list[Call]] = field(default_factory=lambda: defaultdict(list))


async def build(session: AsyncSession, calls: Sequence[Call]) -> list[CallContext]:
    """Contexts of the calls, in a handful of queries whatever their number."""
    if not calls:
        return []
    related = await _related(session, calls)
    return [_assemble(call, related) for call in calls]


async def one(session: AsyncSession, call: Call) -> CallContext:
    """The context of one call; its related rows are read once per session while unchanged.

    A request often builds the same context twice or more (the event, the offer, the response).
    The rows are read again when the call's customer changed, or after a flush that wrote a
    step, note or transfer of the call.
    """
    memo = _memo(session)
    found = memo.get(call.id)
    if found is not None and found[0] == call.customer_id:
        return _assemble(call, found[1])
    fresh: set[int] = session.info.get("fresh_calls", set())
    related = await _related(session, [call], fresh=call.id in fresh)
    memo[call.id] = (call.customer_id, related)
    return _assemble(call, related)


def inserted(session: AsyncSession, call: Call) -> None:
    """The call was inserted in this transaction: it has no steps, notes or transfers to read."""
    _memo(session)
    session.info.setdefault("fresh_calls", set()).add(call.id)


def _memo(session: AsyncSession) -> dict[int, tuple[int | None, _Related]]:
    memo: dict[int, tuple[int | None, _Related]] | None = session.info.get("call_context")
    if memo is None:
        memo = session.info["call_context"] = {}
        event.listen(session.sync_session, "after_flush", _forget_flushed)
    return memo


def _forget_flushed(sync_session: Session, flush_context: Any) -> None:
    memo = sync_session.info.get("call_context")
    if memo:
        for obj in chain(sync_session.new, sync_session.dirty, sync_session.deleted):
            if isinstance(obj, IvrStep | Note | Transfer):
                memo.pop(obj.call_id, None)
                sync_session.info.get("fresh_calls", set()).discard(obj.call_id)


async def _related(
    session: AsyncSession, calls: Sequence[Call], *, fresh: bool = False
) -> _Related:
    ids = [c.id for c in calls]
    out = _Related()
    if not fresh:
        await _call_rows(session, ids, out)
    await _customer_rows(session, calls, out)
    return out


def _call_rows_query() -> CompoundSelect[*tuple[Any, ...]]:
    """Steps, notes and transfers of the calls, with the names of the people they name.

    One statement instead of four: this runs for every context a request builds, and on the
    embedded default each statement costs far more in the layers above SQLite than in it.
    Columns: kind, call_id, at, id, three texts, two (user id, display name) pairs. Built once
    (the call ids are an expanding parameter): built per use, its aliases missed SQLAlchemy's
    statement cache and every use was compiled again, at some 3 ms.
    """
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    author, source, target = aliased(User), aliased(User), aliased(User)
    no_text, no_id = cast(null(), Text), cast(null(), Integer)
    steps = select(
        literal("s").label("kind"),
        IvrStep.call_id,
        IvrStep.at,
        IvrStep.id,
        cast(IvrStep.node, Text).label("a"),
        IvrStep.prompt.label("b"),
        IvrStep.input.label("c"),
        no_id.label("p"),
        no_text.label("p_name"),
        no_id.label("q"),
        no_text.label("q_name"),
    ).where(IvrStep.call_id.in_(ids))
    notes = (
        select(
            literal("n"),
            Note.call_id,
            Note.at,
            Note.id,
            Note.text,
            no_text,
            no_text,
            Note.author_id,
            author.display_name,
            no_id,
            no_text,
        )
        .outerjoin(author, author.id == Note.author_id)
        .where(Note.call_id.in_(ids))
    )
    transfers = (
        select(
            literal("t"),
            Transfer.call_id,
            Transfer.at,
            Transfer.id,
            cast(Transfer.to_queue, Text),
            Transfer.note,
            no_text,
            Transfer.from_agent_id,
            source.display_name,
            Transfer.to_agent_id,
            target.display_name,
        )
        .outerjoin(source, source.id == Transfer.from_agent_id)
        .outerjoin(target, target.id == Transfer.to_agent_id)
        .where(Transfer.call_id.in_(ids))
    )
    return union_all(steps, notes, transfers).order_by("at", "id")


_CALL_ROWS = _call_rows_query()


async def _call_rows(session: AsyncSession, ids: list[int], out: _Related) -> None:
    """The calls' steps, notes and transfers, and the people these name."""
    rows = await session.execute(_CALL_ROWS, {"ids": ids})
    for kind, call_id, at, _, a, b, c, p, p_name, q, q_name in rows:
        if p is not None and p_name is not None:
            out.people[p] = Person(id=p, display_name=p_name)
        if q is not None and q_name is not None:
            out.people[q] = Person(id=q, display_name=q_name)
        if kind == "s":
            out.steps[call_id].append(_Step(node=a, prompt=b, input=c, at=at))
        elif kind == "n":
            out.notes[call_id].append(_Note(author_id=p, text=a, at=at))
        else:
            out.transfers[call_id].append(
                _Transfer(from_agent_id=p, to_queue=a, to_agent_id=q, note=b, at=at)
            )


async def _customer_rows(session: AsyncSession, calls: Sequence[Call], out: _Related) -> None:
    """The calls' customers and each one's earlier calls."""
    customer_ids = {c.customer_id for c in calls if c.customer_id is not None}
    if customer_ids:
        for customer in (
            await session.execute(select(Customer).where(Customer.id.in_(customer_ids)))
        ).scalars():
            out.customers[customer.id] = customer
        # Each customer's newest final calls, ranked per customer so none crowds out another.
        rank = (
            func.row_number()
            .over(partition_by=Call.customer_id, order_by=(Call.created_at.desc(), Call.id.desc()))
            .label("rank")
        )
        ranked = (
            select(Call.id, rank)
            .where(Call.customer_id.in_(customer_ids), Call.state.in_(FINAL_STATES))
            .subquery()
        )
        earlier = (
            await session.execute(
                select(Call)
                .join(ranked, ranked.c.id == Call.id)
                .where(ranked.c.rank <= HISTORY_WINDOW)
                .order_by(Call.created_at.desc(), Call.id.desc())
            )
        ).scalars()
        for past in earlier:
            assert past.customer_id is not None
            out.history[past.customer_id].append(past)


def _assemble(call: Call, related: _Related) -> CallContext:
    def person(uid: int | None) -> Person | None:
        return None if uid is None else related.people.get(uid)

    known = related.customers.get(call.customer_id) if call.customer_id else None
    earlier_calls = [
        HistoryItem(
            id=p.id,
            started_at=p.created_at,
            intent=p.intent,
            disposition=p.disposition,
            sentiment=p.sentiment,
            csat=p.csat,
        )
        for p in related.history.get(call.customer_id or 0, [])
        if p.id != call.id and p.created_at <= call.created_at
    ][:HISTORY]
    return CallContext(
        id=call.id,
        state=call.state,
        caller_number=call.caller_number,
        language=call.language,
        customer=CustomerBrief.model_validate(known) if known else None,
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
        ivr_path=[
            StepOut(node=s.node, prompt=s.prompt, input=s.input, at=s.at)
            for s in related.steps.get(call.id, [])
        ],
        notes=[
            NoteOut(author=person(n.author_id), text=n.text, at=n.at)
            for n in related.notes.get(call.id, [])
        ],
        transfers=[
            TransferOut(
                from_agent=person(t.from_agent_id),
                to_queue=t.to_queue,
                to_agent=person(t.to_agent_id),
                note=t.note,
                at=t.at,
            )
            for t in related.transfers.get(call.id, [])
        ],
        history=earlier_calls,
        agent_id=call.agent_id,
        created_at=call.created_at,
        queued_at=call.queued_at,
        connected_at=call.connected_at,
        ended_at=call.ended_at,
        disposition=call.disposition,
        sentiment=call.sentiment,
        csat=call.csat,
        had_to_repeat=call.had_to_repeat,
        offer_expires_at=call.offer_expires_at if call.state == "offered" else None,
    )


def wait_s(call: Call, now: datetime) -> float | None:
    if call.queued_at is None:
        return None
    until = (
        call.connected_at if call.state not in ("queued", "offered") and call.connected_at else now
    )
    return max(0.0, round((until - call.queued_at).total_seconds(), 1))
