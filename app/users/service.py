"""Users: sign-in, creation and lists."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from app.auth.service import verify_password_async
from app.db import DbSession
from app.errors import Conflict, Invalid
from app.uow import UnitOfWork
from app.users import repository as users
from app.users.models import User
from app.users.schemas import UserCreate


async def authenticate(uow: UnitOfWork, *, username: str, password: str) -> User | None:
    """The user, if the password is theirs. The hash is checked with no transaction open: on
    SQLite it would hold the only connection meanwhile, and every call would wait."""
    async with uow.outside() as session:
        user = await users.get_by_username(session, username)
    ok = await verify_password_async(user.password_hash if user else None, password)
    return user if ok else None


def check_skills(skills: Sequence[str], queues: set[str]) -> None:
    """A skill is the name of a queue of the phone tree: anything else would route nothing and
    show on the wall as a queue of its own."""
    unknown = sorted(set(skills) - queues)
    if unknown:
        raise Invalid(
            f"unknown skill {', '.join(map(repr, unknown))}: "
            f"skills are the phone tree's queues: {', '.join(sorted(queues))}"
        )


async def create(session: DbSession, *, data: UserCreate, password_hash: str) -> User:
    """password_hash: the password hashed by the caller, before the transaction."""
    if await users.get_by_username(session, data.username) is not None:
        raise Conflict(f"username {data.username!r} is taken")
    user = User(
        username=data.username,
        password_hash=password_hash,
        display_name=data.display_name or data.username,
        role=data.role,
        skills=sorted(set(data.skills)),
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # a concurrent create of the same name
        raise Conflict(f"username {data.username!r} is taken") from exc
    return user


async def list_all(session: DbSession) -> Sequence[User]:
    return await users.list_all(session)


async def list_agents(session: DbSession) -> Sequence[User]:
    return await users.list_agents(session)
