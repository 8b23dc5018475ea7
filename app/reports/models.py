"""The reports' own rows: roll-ups of finished calls, and the supervisors' marks on groups of the
exceptions report ("add to the phone tree")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class ExceptionMark(Base):
    __tablename__ = "exception_marks"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The group's key terms, sorted and joined by spaces: a group is known by its terms, which
    # the same words give again in any later period.
    terms_key: Mapped[str] = mapped_column(String(400), unique=True)
    marked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(String(500), default=None)


class ReportRollup(Base):
    """The tally (app/reports/tally.py, Tally.to_json) of the finished calls handed off to the
    centre within one hour or one day (UTC) that went to one queue, or were answered by one
    agent (key "" for the calls no agent answered). Written by app/reports/rollup.py as calls
    finish; a report reads these rows for the whole hours and days of its period instead of a
    row per call."""

    __tablename__ = "report_rollups"
    __table_args__ = (UniqueConstraint("dimension", "grain", "start", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dimension: Mapped[str] = mapped_column(String(8))  # "queue" or "agent"
    grain: Mapped[str] = mapped_column(String(8))  # "hour" or "day"
    start: Mapped[datetime]
    key: Mapped[str] = mapped_column(String(64))
    tally: Mapped[dict[str, Any]]
