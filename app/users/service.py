"""Data access for users: create, get, list, authenticate."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import hash_secret_async, verify_secret_async
from app.db import end_for_now
from app.errors import Conflict
from app.users.models import Role, User
from app.users.schemas import UserCreate


async def get(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_username(session: AsyncSession, *, username: str) -> User | None:
    return (
        await session.execute(select(User).where(User.username == username))
    ).scalar_one_or_none()


async def list_all(session: AsyncSession) -> Sequence[User]:
    return (await session.execute(select(User).order_by(User.id))).scalars().all()


async def list_agents(session: AsyncSession) -> Sequence[User]:
    query = select(User).where(User.role == Role.agent.value).order_by(User.display_name)
    return (await session.execute(query)).scalars().all()


async def create(session: AsyncSession, *, data: UserCreate) -> User:
    # Hashed first, with no transaction open (the supervisor's check read in one): argon2 takes
    # tens of milliseconds, which on SQLite would hold up every call for as long.
    await end_for_now(session)
    password_hash = await hash_secret_async(data.password)
    if await get_by_username(session, username=data.username) is not None:
        raise Conflict(f"username {data.username!r} is taken")
    user = User(
        username=data.username,
        password_hash=password_hash,
        display_name=data.display_name or data.username,
        role=data.role.value,
        skills=sorted(set(data.skills)),
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # a concurrent create of the same name
        raise Conflict(f"username {data.username!r} is taken") from exc
    return user


async def authenticate(session: AsyncSession, *, username: str, password: str) -> User | None:
    user = await get_by_username(session, username=username)
    stored = user.password_hash if user else None
    # Verified with no transaction open: on SQLite it would hold the write lock meanwhile, and a
    # shift signing in would hold up the calls (argon2 takes tens of milliseconds per login).
    await end_for_now(session)
    ok = await verify_secret_async(stored, password)
    return user if ok else None
