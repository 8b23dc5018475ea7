"""Queries of the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select

from app.audit.models import AuditEntry
from app.db import DbSession


def add(session: DbSession, entry: AuditEntry) -> None:
    session.add(entry)


async def listed(
    session: DbSession,
    *,
    since: datetime | None,
    until: datetime | None,
    action: str | None,
    user_id: int | None,
    call_id: int | None,
    before_id: int | None,
    limit: int,
) -> Sequence[AuditEntry]:
    """Newest first. user_id: entries by that user or about them."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if user_id is not None:
        stmt = stmt.where(or_(AuditEntry.actor_id == user_id, AuditEntry.user_id == user_id))
    if call_id is not None:
        stmt = stmt.where(AuditEntry.call_id == call_id)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return (await session.scalars(stmt)).all()


async def delete_older(session: DbSession, *, before: datetime, limit: int) -> int:
    """Delete up to limit entries written before `before`, oldest first; how many."""
    oldest = (
        select(AuditEntry.id).where(AuditEntry.at < before).order_by(AuditEntry.id).limit(limit)
    )
    result = await session.execute(
        delete(AuditEntry)
        .where(AuditEntry.id.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
