"""The call context: everything the caller told the phone tree, built for many calls at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from app.calls.repository import FINAL, CallRow
from app.calls.schemas import (
    CallContext,
    HistoryItem,
    Identity,
    NoteOut,
    Person,
    StepOut,
    TransferOut,
)
from app.customers.schemas import CustomerBrief
from app.db import Unit
from app.sql import Db, Sql

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


class _Past(NamedTuple):
    id: int
    created_at: datetime
    intent: str | None
    disposition: str | None
    sentiment: str | None
    csat: int | None


@dataclass
class _Related:
    """What a context needs beyond the call's own row, for one or many calls."""

    steps: dict[int, list[_Step]] = field(default_factory=lambda: defaultdict(list))
    notes: dict[int, list[_Note]] = field(default_factory=lambda: defaultdict(list))
    transfers: dict[int, list[_Transfer]] = field(default_factory=lambda: defaultdict(list))
    people: dict[int, Person] = field(default_factory=dict)
    customers: dict[int, CustomerBrief] = field(default_factory=dict)
    history: dict[int, list[_Past]] = field(default_factory=lambda: defaultdict(list))


async def build(session: Unit, calls: Sequence[CallRow]) -> list[CallContext]:
    """Contexts of the calls, in a handful of queries whatever their number."""
    if not calls:
        return []
    db = await Db.of(session)
    related = await _related(db, calls)
    return [_assemble(call, related) for call in calls]


async def one(session: Unit, call: CallRow) -> CallContext:
    """The context of one call; its related rows are read once per transaction while unchanged.

    A request often builds the same context twice or more (the event, the offer, the response).
    The rows are read again when the call's customer changed, or after this transaction added a
    step, note or transfer to the call (forget()).
    """
    db = await Db.of(session)
    memo = _memo(db)
    found = memo.get(call.id)
    if found is not None and found[0] == call.customer_id:
        return _assemble(call, found[1])
    related = await _related(db, [call], fresh=call.id in _fresh(db))
    memo[call.id] = (call.customer_id, related)
    return _assemble(call, related)


def inserted(db: Db, call: CallRow) -> None:
    """The call was inserted in this transaction: it has no steps, notes or transfers to read."""
    _fresh(db).add(call.id)


def forget(db: Db, call_id: int) -> None:
    """This transaction added a step, note or transfer to the call: read its rows again."""
    _memo(db).pop(call_id, None)
    _fresh(db).discard(call_id)


def _memo(db: Db) -> dict[int, tuple[int | None, _Related]]:
    memo: dict[int, tuple[int | None, _Related]] = db.memo.setdefault("call_context", {})
    return memo


def _fresh(db: Db) -> set[int]:
    fresh: set[int] = db.memo.setdefault("fresh_calls", set())
    return fresh


def _call_rows_sql(where: str) -> Sql:
    """Steps, notes and transfers of calls, with the names of the people they name.

    One statement instead of four: this runs for every context a request builds. Columns:
    kind, call_id, at, id, three texts, two (user id, display name) pairs.
    """
    return Sql(
        f"""
        SELECT 's', s.call_id, s.at, s.id, CAST(s.node AS TEXT), s.prompt, s.input,
            CAST(NULL AS INTEGER), CAST(NULL AS TEXT), CAST(NULL AS INTEGER), CAST(NULL AS TEXT)
        FROM ivr_steps s WHERE s.call_id {where}
        UNION ALL
        SELECT 'n', n.call_id, n.at, n.id, n.text, CAST(NULL AS TEXT), CAST(NULL AS TEXT),
            n.author_id, a.display_name, CAST(NULL AS INTEGER), CAST(NULL AS TEXT)
        FROM notes n LEFT JOIN users a ON a.id = n.author_id WHERE n.call_id {where}
        UNION ALL
        SELECT 't', t.call_id, t.at, t.id, CAST(t.to_queue AS TEXT), t.note, CAST(NULL AS TEXT),
            t.from_agent_id, f.display_name, t.to_agent_id, g.display_name
        FROM transfers t LEFT JOIN users f ON f.id = t.from_agent_id
            LEFT JOIN users g ON g.id = t.to_agent_id
        WHERE t.call_id {where}
        ORDER BY 3, 4
        """,
        reads=("ivr_steps", "notes", "transfers", "users"),
    )


_ONE_CALL_ROWS = _call_rows_sql("= :id")
_CALL_ROWS = _call_rows_sql("IN {ids}")
_CUSTOMERS = Sql(
    "SELECT id, name, account_number, segment, phone_numbers FROM customers WHERE id IN {ids}"
)
# Each customer's newest final calls, ranked per customer so that none crowds out another.
_HISTORY = Sql(
    f"""
    SELECT customer_id, id, created_at, intent, disposition, sentiment, csat FROM (
        SELECT customer_id, id, created_at, intent, disposition, sentiment, csat,
            row_number() OVER (PARTITION BY customer_id ORDER BY created_at DESC, id DESC) AS r
        FROM calls WHERE customer_id IN {{ids}} AND state IN ({FINAL})
    ) AS ranked
    WHERE r <= {HISTORY_WINDOW}
    ORDER BY created_at DESC, id DESC
    """
)


async def _related(db: Db, calls: Sequence[CallRow], *, fresh: bool = False) -> _Related:
    out = _Related()
    if not fresh:
        await _call_rows(db, calls, out)
    await _customer_rows(db, calls, out)
    return out


async def _call_rows(db: Db, calls: Sequence[CallRow], out: _Related) -> None:
    """The calls' steps, notes and transfers, and the people these name."""
    if len(calls) == 1:
        rows = await db.rows(_ONE_CALL_ROWS, {"id": calls[0].id})
    else:
        rows = await db.rows(_CALL_ROWS, {"ids": db.ids(c.id for c in calls)})
    for kind, call_id, at_value, _, a, b, c, p, p_name, q, q_name in rows:
        at = db.dt(at_value)
        assert at is not None
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


async def _customer_rows(db: Db, calls: Sequence[CallRow], out: _Related) -> None:
    """The calls' customers and each one's earlier calls."""
    customer_ids = {c.customer_id for c in calls if c.customer_id is not None}
    if not customer_ids:
        return
    ids = db.ids(customer_ids)
    for cid, name, account, segment, phones in await db.rows(_CUSTOMERS, {"ids": ids}):
        out.customers[cid] = CustomerBrief(
            id=cid,
            name=name,
            account_number=account,
            segment=segment,
            phone_numbers=db.json_out(phones),
        )
    for cid, pid, created, intent, disposition, sentiment, csat in await db.rows(
        _HISTORY, {"ids": ids}
    ):
        started = db.dt(created)
        assert started is not None
        out.history[cid].append(_Past(pid, started, intent, disposition, sentiment, csat))


def _assemble(call: CallRow, related: _Related) -> CallContext:
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
        customer=known,
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


def wait_s(call: CallRow, now: datetime) -> float | None:
    if call.queued_at is None:
        return None
    until = (
        call.connected_at if call.state not in ("queued", "offered") and call.connected_at else now
    )
    return max(0.0, round((until - call.queued_at).total_seconds(), 1))
