"""The figures a scrape reads from the database: two grouped queries on indexed columns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from app.calls.models import Call
from app.calls.states import CallState
from app.db import DbSession
from app.users.models import Role, User

# Calls that are still going; the finished ones (ended, abandoned) only grow, and are the
# reports' business. ix_calls_state_queue answers this without reading the finished ones.
LIVE_STATES = (
    CallState.ivr,
    CallState.queued,
    CallState.offered,
    CallState.connected,
    CallState.wrapup,
)

_LIVE_CALLS = (
    select(Call.state, Call.queue, func.count(), func.min(Call.waiting_since))
    .where(Call.state.in_(LIVE_STATES))
    .group_by(Call.state, Call.queue)
)

_AGENTS = (
    select(User.status, func.count())
    .where(User.role == Role.agent, User.disabled_at.is_(None))
    .group_by(User.status)
)


async def live_calls(
    session: DbSession,
) -> list[tuple[str, str | None, int, datetime | None]]:
    """(state, queue, calls, the earliest waiting_since among them) per state and queue."""
    rows = (await session.execute(_LIVE_CALLS)).all()
    return [(str(s), None if q is None else str(q), int(n), w) for s, q, n, w in rows]


async def agents_by_status(session: DbSession) -> dict[str, int]:
    rows = (await session.execute(_AGENTS)).all()
    return {str(status): int(n) for status, n in rows}
