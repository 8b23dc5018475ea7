"""Writing events: numbered in commit order and inserted in the transaction of their change."""

from __future__ import annotations

import json

from app.db import DbSession
from app.realtime import repository
from app.uow import PendingEvent, RawJson

CHANNEL = "tellonce.events"

# (seq, payload, user_id, to_supervisors) of a committed event; payload is the envelope as sent.
Committed = tuple[int, str, int | None, bool]


def envelope(seq: int, event: PendingEvent) -> str:
    """The event as every recipient gets it, serialised once."""
    data = event.data
    body = data.text if isinstance(data, RawJson) else json.dumps(data, separators=(",", ":"))
    return (
        f'{{"seq":{seq},"type":{json.dumps(event.type)},'
        f'"at":"{event.at.isoformat()}","data":{body}}}'
    )


def is_type(payload: str, type_: str) -> bool:
    """Whether an envelope written by envelope() is of this type, without parsing it: its type
    follows the seq, the first comma."""
    return payload.startswith(f',"type":"{type_}"', payload.find(","))


async def write(session: DbSession, events: list[PendingEvent]) -> list[Committed]:
    """Number the events and insert them; what to hand to the hub once committed.

    The counter is bumped after every other write of the transaction (the ORM flushes those
    first), so that its row lock, which orders the writers, is held for as short a time as
    possible.
    """
    if not events:
        return []
    top = await repository.bump_counter(session, len(events))
    if top is None:
        raise RuntimeError("the events counter row is missing")
    base = top - len(events)
    committed: list[Committed] = [
        (base + n, envelope(base + n, event), event.user_id, event.to_supervisors)
        for n, event in enumerate(events, start=1)
    ]
    await repository.add(
        session,
        [
            {
                "seq": seq,
                "type": event.type,
                "at": event.at,
                "payload": payload,
                "user_id": event.user_id,
                "to_supervisors": event.to_supervisors,
            }
            for (seq, payload, _, _), event in zip(committed, events, strict=True)
        ],
    )
    return committed
