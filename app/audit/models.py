"""Audit entries: who did what to which call, customer or user, and when."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, EnumText, utcnow


class Actor(enum.StrEnum):
    user = "user"  # an agent or a supervisor: actor_id says which
    ivr = "ivr"  # the phone tree, with the IVR key
    system = "system"  # a deadline (the routing loop) or the command line
    anonymous = "anonymous"  # a client that is not signed in (a failed sign-in)


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[Actor] = mapped_column(EnumText(Actor))
    actor_id: Mapped[int | None] = mapped_column(default=None, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    # What was acted on: "call", "customer" or "user", and its id.
    object_type: Mapped[str | None] = mapped_column(String(16), default=None)
    object_id: Mapped[int | None] = mapped_column(default=None)
    # The call and the user the entry concerns, if any, whatever its object: filters.
    call_id: Mapped[int | None] = mapped_column(default=None, index=True)
    user_id: Mapped[int | None] = mapped_column(default=None, index=True)
    # The request that made it, as in the logs' request_id.
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    # No secret ever goes here: no password, PIN, token or key.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
