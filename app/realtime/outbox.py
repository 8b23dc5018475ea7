"""Writing events: queued on the session, given their seq and inserted just before commit."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from app.db import Unit, after_commit, before_commit, utcnow
from app.sql import Db, Sql

CHANNEL = "tellonce.events"


class RawJson:
    """Event data serialised already (a schema's model_dump_json()): sent as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


EventData = dict[str, Any] | list[Any] | RawJson


def emit(
    session: Unit,
    type: str,
    data: EventData,
    *,
    user_id: int | None = None,
    to_supervisors: bool = True,
) -> None:
    """Queue an event for this transaction: for user_id (an agent) and, if asked, supervisors.

    data must be JSON-ready (a schema's model_dump(mode="json")), or RawJson: it is taken as it
    is now.
    """
    pending: list[tuple[str, EventData, int | None, bool, datetime]] = session.info.setdefault(
        "outbox", []
    )
    pending.append((type, data, user_id, to_supervisors, utcnow()))
    before_commit(session, "outbox", flush_outbox, last=True)


def _rest(type_: str, at: datetime, data: EventData) -> str:
    """The envelope as sent, but for its seq: '{"seq":N,' + this."""
    body = data.text if isinstance(data, RawJson) else json.dumps(data, separators=(",", ":"))
    return f'"type":{json.dumps(type_)},"at":"{at.isoformat()}","data":{body}}}'


_BUMP = Sql("UPDATE counters SET value = value + :n WHERE name = 'events' RETURNING value")
_INSERT = Sql(
    "INSERT INTO events (seq, type, at, payload, user_id, to_supervisors) "
    "VALUES (:seq, :type, :at, :payload, :user_id, :to_supervisors)"
)
# PostgreSQL: numbered and inserted in one statement, from the same '{"seq":N,' + rest.
_INSERT_NUMBERED = Sql(
    """
    WITH counter AS (
        UPDATE counters SET value = value + CAST(:n AS bigint)
        WHERE name = 'events' RETURNING value
    )
    INSERT INTO events (seq, type, at, payload, user_id, to_supervisors)
    SELECT counter.value - CAST(:n AS bigint) + e.ord, e.type, e.at,
           '[[seq]]' || (counter.value - CAST(:n AS bigint) + e.ord) || ',' || e.rest,
           e.user_id, e.to_supervisors
    FROM counter, jsonb_to_recordset(CAST(:events AS jsonb)) AS e(
        ord bigint, type text, at timestamptz, rest text, user_id integer, to_supervisors boolean
    )
    RETURNING seq
    """.replace("[[seq]]", '{{"seq":')
)

# (seq, payload, user_id, to_supervisors) of an event this instance committed.
Committed = tuple[int, str, int | None, bool]


async def flush_outbox(session: Unit) -> None:
    pending: list[tuple[str, EventData, int | None, bool, datetime]] = session.info.pop(
        "outbox", []
    )
    if not pending:
        return
    # One counter row, updated inside the transaction: its row lock orders writers, so seq grows
    # in commit order and a reader of seq > N never skips an event that commits late. Writers
    # queue on that lock from the update to the commit, so every other write goes out first,
    # and on PostgreSQL the update and the insert are one statement: one round trip under it.
    db = await Db.of(session)
    await db.flush()
    # Each envelope serialised once, but for its seq: '{"seq":N,' + rest.
    events = [
        (offset, type_, at, _rest(type_, at, data), user_id, to_supervisors)
        for offset, (type_, data, user_id, to_supervisors, at) in enumerate(pending, start=1)
    ]
    if db.postgres:
        wire = [
            {
                "ord": o,
                "type": t,
                "at": at.isoformat(),
                "rest": r,
                "user_id": u,
                "to_supervisors": s,
            }
            for o, t, at, r, u, s in events
        ]
        seqs = [
            int(seq)
            for (seq,) in await db.run(
                _INSERT_NUMBERED,
                {"n": len(events), "events": json.dumps(wire, separators=(",", ":"))},
            )
        ]
        if len(seqs) != len(events):
            raise RuntimeError("the events counter row is missing")
        base = max(seqs) - len(events)
    else:
        top = await db.value(_BUMP, {"n": len(events)})
        if top is None:
            raise RuntimeError("the events counter row is missing")
        base = int(top) - len(events)
    # (seq, payload, user, supervisors): the payload the database stores, built the same way.
    numbered: list[Committed] = [
        (base + o, f'{{"seq":{base + o},{rest}', u, s) for o, _, _, rest, u, s in events
    ]
    if not db.postgres:
        await db.write_many(
            _INSERT,
            [
                {
                    "seq": seq,
                    "type": type_,
                    "at": db.ts(at),
                    "payload": payload,
                    "user_id": user_id,
                    "to_supervisors": to_supervisors,
                }
                for (_, type_, at, _, _, _), (seq, payload, user_id, to_supervisors) in zip(
                    events, numbered, strict=True
                )
            ],
        )
    # After commit, this instance's hub gets the events at once (no read of what it just wrote),
    # and its announcer sends them on the bus to every other instance's hub.
    session.info.setdefault("committed_events", []).extend(numbered)
    after_commit(session, "events", lambda: _announce(session))


async def _announce(session: Unit) -> None:
    committed: list[Committed] = session.info.pop("committed_events", [])
    if not committed:
        return
    ctx = session.info.get("ctx")
    deliver = getattr(ctx, "deliver_local", None)
    if deliver is not None:
        deliver(committed)
        # Let the sockets' senders write before this request writes its response: the agent's
        # screen pop then waits for no HTTP response.
        await asyncio.sleep(0)
    announce = getattr(ctx, "announce", None)
    if announce is not None:
        # This instance's hub tells the others, from a task of its own (Hub.announce).
        announce(committed)
        return
    bus = getattr(ctx, "bus", None)
    if bus is not None:
        await bus.publish(CHANNEL, str(committed[-1][0]))
