"""Users: sign-in and sign-out, creation, lists, and disabling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.auth.service import verify_password_async
from app.calls import repository as calls
from app.db import DbSession, utcnow
from app.errors import Conflict, Invalid, NotFound
from app.routing import service as routing
from app.uow import UnitOfWork
from app.users import repository as users
from app.users.models import AgentStatus, User
from app.users.schemas import UserCreate


async def authenticate(uow: UnitOfWork, *, username: str, password: str) -> User | None:
    """The user, if the password is theirs. The hash is checked with no transaction open: on
    SQLite it would hold the only connection meanwhile, and every call would wait."""
    async with uow.outside() as session:
        user = await users.get_by_username(session, username)
    ok = await verify_password_async(user.password_hash if user else None, password)
    # A disabled user is refused as a wrong password is: the answer tells nobody which it was.
    ok = ok and user is not None and user.disabled_at is None
    if not ok:
        await audit.sign_in_failed(uow.ctx, username=username, user_id=user.id if user else None)
    return user if ok else None


def check_skills(skills: Sequence[str], queues: set[str]) -> None:
    """A skill is the name of a queue of the phone tree: anything else would route nothing and
    show on the wall as a queue of its own."""
    unknown = sorted(set(skills) - queues)
    if unknown:
        raise Invalid(
            f"unknown skill {', '.join(map(repr, unknown))}: "
            f"skills are the phone tree's queues: {', '.join(sorted(queues))}",
            loc=("body", "skills"),
        )


async def create(
    session: DbSession, *, data: UserCreate, password_hash: str, by: User | None = None
) -> User:
    """password_hash: the password hashed by the caller, before the transaction. by: the
    supervisor who creates it (None: the command line)."""
    if await users.get_by_username(session, data.username) is not None:
        raise Conflict(f"username {data.username!r} is taken")
    user = User(
        username=data.username,
        password_hash=password_hash,
        display_name=data.display_name or data.username,
        role=data.role,
        skills=sorted(set(data.skills)),
        phone=data.phone,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # a concurrent create of the same name
        raise Conflict(f"username {data.username!r} is taken") from exc
    audit.user_created(session, user, by=by)
    return user


async def list_all(session: DbSession) -> Sequence[User]:
    return await users.list_all(session)


async def list_agents(session: DbSession) -> Sequence[User]:
    return await users.list_agents(session)


async def sign_out(uow: UnitOfWork, *, user: User) -> None:
    """End every token of the user (all their tabs), and stop their calls coming."""
    await _end_sessions(uow, user_id=user.id, reason="signed_out")
    audit.user_changed(uow.session, user, by=user, action="auth.signed_out")


async def disable(uow: UnitOfWork, *, user_id: int, by: User) -> User:
    """The user can no longer sign in, and every token and socket of theirs ends at once."""
    if user_id == by.id:
        raise Conflict("a supervisor cannot disable their own login")
    target = await users.get(uow.session, user_id)
    if target is None:
        raise NotFound("user not found")
    if target.disabled_at is not None:
        return target
    disabled = await _end_sessions(uow, user_id=user_id, reason="disabled")
    audit.user_changed(uow.session, disabled, by=by, action="user.disabled")
    return disabled


async def enable(uow: UnitOfWork, *, user_id: int, by: User) -> User:
    """The user may sign in again; tokens from before the disable stay dead."""
    user = await users.get(uow.session, user_id, lock=True)
    if user is None:
        raise NotFound("user not found")
    if user.disabled_at is not None:
        audit.user_changed(uow.session, user, by=by, action="user.enabled")
    user.disabled_at = None
    return user


async def _end_sessions(
    uow: UnitOfWork, *, user_id: int, reason: Literal["signed_out", "disabled"]
) -> User:
    """Bump the user's token version, so that every token issued so far is refused, and tell
    every instance's hub through the outbox, so that each closes the user's sockets there.

    The user goes offline. An offer they hold goes back to the head of its queue at once: nobody
    is at that desk to answer. A connected call, or one in wrap-up, stays theirs (a caller on
    the line is not cut off) and they go offline when it ends; a supervisor can move a
    connected call to someone else meanwhile.
    """
    now = utcnow()
    # The call before the agent: the order in which routing locks them.
    offered = await calls.offered_to(uow.session, agent_id=user_id)
    user = await routing.lock_user(uow, user_id)
    user.token_version += 1
    if reason == "disabled":
        user.disabled_at = now
    if offered is not None and user.status == AgentStatus.offered:
        user.requested_status = AgentStatus.offline
        await routing.revoke_offer(uow, offered, reason="signed_out", now=now)
        routing.requeue(uow, offered)
    else:
        await routing.request_status(uow, user=user, status=AgentStatus.offline)
    # Addressed to the user: each hub closes that user's sockets whose token is now refused.
    uow.emit("user.signed_out", {"user_id": user.id, "reason": reason}, user_id=user.id)
    return user
