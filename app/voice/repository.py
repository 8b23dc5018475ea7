"""Queries of voice sessions."""

from __future__ import annotations

from sqlalchemy import select

from app.calls.models import Call
from app.db import DbSession, get_by_pk, get_locked
from app.users.models import User
from app.voice.models import VoiceSession


async def get(session: DbSession, call_sid: str, *, lock: bool = False) -> VoiceSession | None:
    if lock:
        return await get_locked(session, VoiceSession, call_sid)
    return await get_by_pk(session, VoiceSession, call_sid)


def add(session: DbSession, voice: VoiceSession) -> None:
    session.add(voice)


async def agent_phone(session: DbSession, call_id: int) -> str | None:
    """Where the call's agent takes phone calls, if the call has an agent who does."""
    query = (
        select(User.phone).join(Call, Call.agent_id == User.id).where(Call.id == call_id).limit(1)
    )
    phone: str | None = (await session.execute(query)).scalar_one_or_none()
    return phone
