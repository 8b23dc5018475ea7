"""Calls and what travels with them, as the call lifecycle reads and writes them (app/sql.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.calls.models import FINAL_STATES, Call, CallState
from app.db import utcnow
from app.sql import Db, Row, Sql


class CallRow(Row):
    MODEL = Call
    COLUMNS = (
        "id",
        "state",
        "caller_number",
        "language",
        "customer_id",
        "caller_known",
        "verified",
        "verify_method",
        "verified_at",
        "verify_failures",
        "intent",
        "queue",
        "escalation_reason",
        "utterance",
        "collected",
        "vip",
        "agent_id",
        "offer_expires_at",
        "rejected_by",
        "announced_position",
        "disposition",
        "sentiment",
        "csat",
        "had_to_repeat",
        "created_at",
        "queued_at",
        "first_queued_at",
        "connected_at",
        "first_connected_at",
        "hungup_at",
        "ended_at",
    )

    id: int
    state: str
    caller_number: str
    language: str | None
    customer_id: int | None
    caller_known: bool
    verified: bool
    verify_method: str | None
    verified_at: datetime | None
    verify_failures: int
    intent: str | None
    queue: str | None
    escalation_reason: str | None
    utterance: str | None
    collected: dict[str, Any]
    vip: bool
    agent_id: int | None
    offer_expires_at: datetime | None
    rejected_by: list[Any]
    announced_position: int | None
    disposition: str | None
    sentiment: str | None
    csat: int | None
    had_to_repeat: bool | None
    created_at: datetime
    queued_at: datetime | None
    first_queued_at: datetime | None
    connected_at: datetime | None
    first_connected_at: datetime | None
    hungup_at: datetime | None
    ended_at: datetime | None


FINAL = ", ".join(f"'{s}'" for s in FINAL_STATES)
ACTIVE = ", ".join(
    f"'{s}'" for s in (CallState.queued.value, CallState.offered.value, CallState.connected.value)
)

_INSERT_CALL = Sql(
    f"""
    INSERT INTO calls (state, caller_number, language, customer_id, caller_known, verified,
        verify_failures, collected, vip, rejected_by, created_at)
    VALUES (:state, :caller_number, :language, :customer_id, :caller_known, FALSE, 0,
        :collected, :vip, :rejected_by, :created_at)
    RETURNING {CallRow.columns()}
    """
)
_INSERT_STEP = Sql(
    "INSERT INTO ivr_steps (call_id, node, prompt, input, at) "
    "VALUES (:call_id, :node, :prompt, :input, :at)"
)
_INSERT_NOTE = Sql(
    "INSERT INTO notes (call_id, author_id, text, at) VALUES (:call_id, :author_id, :text, :at)"
)
_INSERT_TRANSFER = Sql(
    "INSERT INTO transfers (call_id, from_agent_id, to_queue, to_agent_id, note, at) "
    "VALUES (:call_id, :from_agent_id, :to_queue, :to_agent_id, :note, :at)"
)
_RECORD_AGENT = Sql(
    "INSERT INTO call_agents (call_id, agent_id, at) VALUES (:call_id, :agent_id, :at) "
    "ON CONFLICT (call_id, agent_id) DO NOTHING",
    reads=("call_agents",),
)
_SEEN_BY = Sql(
    "SELECT 1 FROM call_agents WHERE call_id = :call_id AND agent_id = :agent_id",
    reads=("call_agents",),
)


async def get(db: Db, call_id: int, *, lock: bool = False) -> CallRow | None:
    return await CallRow.get(db, call_id, lock=lock)


async def insert(
    db: Db,
    *,
    caller_number: str,
    language: str | None,
    customer_id: int | None,
    vip: bool,
) -> CallRow:
    values = await db.run(
        _INSERT_CALL,
        {
            "state": CallState.ivr.value,
            "caller_number": caller_number,
            "language": language,
            "customer_id": customer_id,
            "caller_known": customer_id is not None,
            "collected": db.json_in({}),
            "vip": vip,
            "rejected_by": db.json_in([]),
            "created_at": db.ts(utcnow()),
        },
    )
    return CallRow.load(db, values[0])


async def add_step(
    db: Db, *, call_id: int, node: str, prompt: str, input: str | None, at: datetime
) -> None:
    await db.run(
        _INSERT_STEP,
        {"call_id": call_id, "node": node, "prompt": prompt, "input": input, "at": db.ts(at)},
    )


async def add_note(db: Db, *, call_id: int, author_id: int | None, text: str, at: datetime) -> None:
    await db.run(
        _INSERT_NOTE, {"call_id": call_id, "author_id": author_id, "text": text, "at": db.ts(at)}
    )


async def add_transfer(
    db: Db,
    *,
    call_id: int,
    from_agent_id: int | None,
    to_queue: str | None,
    to_agent_id: int | None,
    note: str | None,
    at: datetime,
) -> None:
    await db.run(
        _INSERT_TRANSFER,
        {
            "call_id": call_id,
            "from_agent_id": from_agent_id,
            "to_queue": to_queue,
            "to_agent_id": to_agent_id,
            "note": note,
            "at": db.ts(at),
        },
    )


async def record_agent(db: Db, *, call_id: int, agent_id: int) -> None:
    """The agent may see this call and its customer from now on (kept if present)."""
    await db.run(_RECORD_AGENT, {"call_id": call_id, "agent_id": agent_id, "at": db.ts(utcnow())})


async def seen_by(db: Db, *, call_id: int, agent_id: int) -> bool:
    return await db.row(_SEEN_BY, {"call_id": call_id, "agent_id": agent_id}) is not None
