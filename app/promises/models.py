"""A promise an agent made to a customer on a call (a wrap with disposition follow_up)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Promise(Base):
    __tablename__ = "promises"
    __table_args__ = (
        # Supervisors' list of overdue promises: the open ones, by due date.
        Index("ix_promises_kept_at_due", "kept_at", "due"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(String(300))
    due: Mapped[date] = mapped_column(Date)
    made_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    made_at: Mapped[datetime] = mapped_column(default=utcnow)
    kept_at: Mapped[datetime | None] = mapped_column(default=None)
    kept_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
