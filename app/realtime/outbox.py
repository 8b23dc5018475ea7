"""Writing events: queued on the session, given their seq and inserted just before commit."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit, before_commit, utcnow
from app.realtime.models import Counter, Event

CHANNEL = "tellonce.events"


def emit(
    session: AsyncSession,
    type: str,
    data: dict[str, Any] | list[Any],
    *,
    user_id: int | None = None,
    to_supervisors: bool = True,
) -> None:
    """Queue an event for this transaction: for user_id (an agent) and, if asked, supervisors.

    data must be JSON-ready (a schema's model_dump(mode="json")): it is taken as it is now.
    """
    pending: list[tuple[str, Any, int | None, bool, datetime]] = session.info.setdefault(
        "outbox", []
    )
    pending.append((type, data, user_id, to_supervisors, utcnow()))
    before_commit(session, "outbox", flush_outbox, last=True)


async def flush_outbox(session: AsyncSession) -> None:
    pending: list[tuple[str, Any, int | None, bool, datetime]] = session.info.pop("outbox", [])
    if not pending:
        return
    # One counter row, updated inside the transaction: its row lock orders writers, so seq grows
    # in commit order and a reader of seq > N never skips an event that commits late. Writers
    # queue on that lock from the update to the commit, so every other write goes out first,
    # and on PostgreSQL the update and the insert are one statement: one round trip under it.
    await session.flush()
    # Each envelope serialised once, but for its seq: '{"seq":N,' + rest.
    events: list[dict[str, Any]] = [
        {
            "ord": offset,
            "type": type_,
            "at": at,
            "rest": json.dumps(
                {"type": type_, "at": at.isoformat(), "data": data}, separators=(",", ":")
            )[1:],
            "user_id": user_id,
            "to_supervisors": to_supervisors,
        }
        for offset, (type_, data, user_id, to_supervisors, at) in enumerate(pending, start=1)
    ]
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Numbered and inserted in one statement, from the same '{"seq":N,' + rest.
        base = await _insert_numbered(session, events) - len(events)
    else:
        top = (
            await session.execute(
                update(Counter)
                .where(Counter.name == "events")
                .values(value=Counter.value + len(events))
                .returning(Counter.value)
            )
        ).scalar_one()
        base = top - len(events)
    # (seq, payload, user, supervisors): the payload the database stores, built the same way.
    numbered: list[Committed] = [
        (
            base + e["ord"],
            f'{{"seq":{base + e["ord"]},{e["rest"]}',
            e["user_id"],
            e["to_supervisors"],
        )
        for e in events
    ]
    if not postgres:
        # Core, not the ORM's bulk insert: every row has the same keys, so one executemany.
        rows = [
            {
                "seq": seq,
                "type": e["type"],
                "at": e["at"],
                "payload": payload,
                "user_id": user_id,
                "to_supervisors": to_supervisors,
            }
            for e, (seq, payload, user_id, to_supervisors) in zip(events, numbered, strict=True)
        ]
        await session.execute(insert(_EVENTS), rows)
    # After commit, this instance's hub gets the events at once (no read of what it just wrote),
    # and the bus tells every instance's hub that the outbox grew up to the last seq.
    session.info.setdefault("committed_events", []).extend(numbered)
    after_commit(session, "events", lambda: _announce(session))


_EVENTS = cast(Table, Event.__table__)

# (seq, payload, user_id, to_supervisors) of an event this instance committed.
Committed = tuple[int, str, int | None, bool]


async def _announce(session: AsyncSession) -> None:
    committed: list[Committed] = session.info.pop("committed_events", [])
    if not committed:
        return
    ctx = session.info.get("ctx")
    deliver = getattr(ctx, "deliver_local", None)
    if deliver is not None:
        deliver(committed)
    bus = getattr(ctx, "bus", None)
    if bus is not None:
        await bus.publish(CHANNEL, str(committed[-1][0]))


_INSERT_NUMBERED = text(
    """
    WITH counter AS (
        UPDATE counters SET value = value + CAST(:n AS bigint)
        WHERE name = 'events' RETURNING value
    )
    INSERT INTO events (seq, type, at, payload, user_id, to_supervisors)
    SELECT counter.value - CAST(:n AS bigint) + e.ord, e.type, e.at,
           '{"seq":' || (counter.value - CAST(:n AS bigint) + e.ord) || ',' || e.rest,
           e.user_id, e.to_supervisors
    FROM counter, jsonb_to_recordset(CAST(:events AS jsonb)) AS e(
        ord bigint, type text, at timestamptz, rest text, user_id integer, to_supervisors boolean
    )
    RETURNING seq
    """
)


async def _insert_numbered(session: AsyncSession, events: list[dict[str, Any]]) -> int:
    """PostgreSQL: take len(events) seqs from the counter and insert the events, in one go."""
    wire = [{**e, "at": e["at"].isoformat()} for e in events]
    result = await session.execute(
        _INSERT_NUMBERED, {"n": len(events), "events": json.dumps(wire, separators=(",", ":"))}
    )
    seqs = list(result.scalars())
    if len(seqs) != len(events):
        raise RuntimeError("the events counter row is missing")
    return int(max(seqs))
