"""Writing events: queued on the session, given their seq and inserted just before commit."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
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
    # in commit order and a reader of seq > N never skips an event that commits late.
    top = (
        await session.execute(
            update(Counter)
            .where(Counter.name == "events")
            .values(value=Counter.value + len(pending))
            .returning(Counter.value)
        )
    ).scalar_one()
    first = top - len(pending) + 1
    rows = []
    for offset, (type_, data, user_id, to_supervisors, at) in enumerate(pending):
        seq = first + offset
        envelope = {"seq": seq, "type": type_, "at": at.isoformat(), "data": data}
        rows.append(
            {
                "seq": seq,
                "type": type_,
                "at": at,
                "payload": json.dumps(envelope, separators=(",", ":")),
                "user_id": user_id,
                "to_supervisors": to_supervisors,
            }
        )
    await session.execute(insert(Event), rows)
    ctx = session.info.get("ctx")
    bus = getattr(ctx, "bus", None)
    if bus is not None:
        after_commit(session, "wake", lambda: bus.publish(CHANNEL, str(top)))
