"""Queries of the outbox: the events table and its one-row counter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, or_, select, update

from app.db import DbSession
from app.realtime.models import Counter, Event

EVENTS = "events"


# Core statements on the tables, not the ORM entities: every commit runs these two, and the
# ORM's bulk paths cost some 2.5 times as much for the same SQL (python3 -m bench.statements).
_COUNTERS, _EVENTS = cast(Table, Counter.__table__), cast(Table, Event.__table__)
_BUMP = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == EVENTS)
    .values(value=_COUNTERS.c.value + bindparam("n"))
    .returning(_COUNTERS.c.value)
)


async def bump_counter(session: DbSession, n: int) -> int | None:
    """Add n to the events counter and return its new value (None: the row is missing).

    Its row lock, held to the commit, orders the writers: seq grows in commit order.
    """
    return (await session.execute(_BUMP, {"n": n})).scalar_one_or_none()


_ADD = insert(_EVENTS)


async def add(session: DbSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(_ADD, rows)


_LATEST = select(Counter.value).where(Counter.name == EVENTS)


async def latest_seq(session: DbSession) -> int:
    """The seq of the newest committed event (the counter survives pruning, max(seq) may not)."""
    value = await session.scalar(_LATEST)
    return int(value or 0)


async def newer(
    session: DbSession, *, after: int, limit: int
) -> Sequence[tuple[int, str, int | None, bool]]:
    stmt = (
        select(Event.seq, Event.payload, Event.user_id, Event.to_supervisors)
        .where(Event.seq > after)
        .order_by(Event.seq)
        .limit(limit)
    )
    return [tuple(row) for row in (await session.execute(stmt)).all()]


async def for_user(
    session: DbSession, *, user_id: int, supervisor: bool, after: int, upto: int, limit: int
) -> Sequence[tuple[int, str]]:
    """(seq, payload) of the user's events with after < seq <= upto, oldest first."""
    mine = Event.user_id == user_id
    stmt = (
        select(Event.seq, Event.payload)
        .where(
            Event.seq > after,
            Event.seq <= upto,
            or_(mine, Event.to_supervisors) if supervisor else mine,
        )
        .order_by(Event.seq)
        .limit(limit)
    )
    return [(int(seq), payload) for seq, payload in (await session.execute(stmt)).all()]


async def oldest_seq(session: DbSession) -> int | None:
    return await session.scalar(select(Event.seq).order_by(Event.seq).limit(1))


async def first_seq_since(session: DbSession, *, since: datetime) -> int | None:
    """The first event written at or after `since`. Events are written in seq order with their
    time, so those before it are the old ones; found by walking seq, with no index on `at` for
    every commit to write."""
    stmt = select(Event.seq).where(Event.at >= since).order_by(Event.seq).limit(1)
    return await session.scalar(stmt)


async def delete_below(session: DbSession, *, below: int) -> int:
    result = await session.execute(
        delete(Event).where(Event.seq < below).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
