"""A supervisor's mark on a group of the exceptions report: "add to the phone tree"."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
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
