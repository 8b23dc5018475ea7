"""Users: agents and supervisors, with the agent's status machine columns."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, EnumText, utcnow


class Role(enum.StrEnum):
    agent = "agent"
    supervisor = "supervisor"


class AgentStatus(enum.StrEnum):
    offline = "offline"
    available = "available"
    offered = "offered"
    busy = "busy"
    wrapup = "wrapup"
    away = "away"


class User(Base):
    __tablename__ = "users"
    # Routing walks available agents longest idle first and stops at the first with the skill.
    __table_args__ = (Index("ix_users_status_since", "status", "status_since", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(EnumText(Role))
    skills: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[AgentStatus] = mapped_column(EnumText(AgentStatus), default=AgentStatus.offline)
    # What the agent asked for while holding an offer or a call; applied when that ends.
    requested_status: Mapped[AgentStatus | None] = mapped_column(
        EnumText(AgentStatus), default=None
    )
    # When the status last changed: "longest idle first" orders available agents by it.
    status_since: Mapped[datetime] = mapped_column(default=utcnow)
    # End of the WRAPUP_S pause after a wrap; a timer row any instance may expire.
    wrapup_until: Mapped[datetime | None] = mapped_column(default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Where a phone call is put through when this agent accepts it: an E.164 number, or
    # "client:NAME" for a softphone registered with the telephony platform.
    phone: Mapped[str | None] = mapped_column(String(80), default=None)
    # Bumped by a sign-out or a disable: tokens carry the value they were issued with, and one
    # that differs is refused, on every instance, at the user read every request makes anyway.
    token_version: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # Set while a supervisor has disabled the user: no sign-in, no token works.
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None
