"""A phone call's place in the phone tree between two webhook requests, by the platform's id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class VoiceSession(Base):
    __tablename__ = "voice_sessions"

    # The platform's CallSid: every request of one call carries it, so it is the idempotency key.
    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller_number: Mapped[str] = mapped_column(String(32))
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), default=None, index=True
    )
    # The engine's state (ivr.driver.dump_state) after the last turn answered.
    state: Mapped[str] = mapped_column(Text)
    # Turns claimed so far; the platform's requests name the turn they answer (?turn=N).
    turn: Mapped[int] = mapped_column(default=0)
    # The TwiML of the last turn answered (null while it is being worked out): a retried
    # request of that turn gets it again, and nothing runs twice.
    twiml: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
