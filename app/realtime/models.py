"""The outbox: events written in the transaction of the change that causes them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Event(Base):
    __tablename__ = "events"

    # Given from the one-row counter inside the transaction, so seq grows in commit order. On
    # SQLite an INTEGER primary key is the rowid itself: declared BIGINT it would be a second
    # index, one more page written by every commit that writes an event.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    type: Mapped[str] = mapped_column(String(32))
    # Not indexed: events are pruned oldest first by seq (app/realtime/hub.py, prune).
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # The envelope as sent, serialised once at write time and sent as is to every recipient.
    payload: Mapped[str] = mapped_column(Text)
    # Who receives it: this user (an agent) and, when to_supervisors, every supervisor.
    user_id: Mapped[int | None] = mapped_column(default=None, index=True)
    to_supervisors: Mapped[bool] = mapped_column(default=True)


class Counter(Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
