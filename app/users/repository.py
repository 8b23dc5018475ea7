"""Queries of users: logins, and the agents that routing picks from.

The statements of the call lifecycle's hot path are built once, at import, with named
parameters (see app/calls/repository.py).
An agent's skills are a JSON array; the queries that look inside it differ by dialect only in
the function that turns the array into rows, so each such statement is built for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, TableValuedAlias, bindparam, case, exists, func, select, true

from app.db import DbSession, dialect_name, get_by_pk, get_locked
from app.users.models import AgentStatus, Role, User

DIALECTS = ("sqlite", "postgresql")


async def get(session: DbSession, user_id: int, *, lock: bool = False) -> User | None:
    if lock:
        return await get_locked(session, User, user_id)
    return await get_by_pk(session, User, user_id)


_ANY_USER = select(exists().select_from(User))


async def any_user(session: DbSession) -> bool:
    return bool(await session.scalar(_ANY_USER))


_BY_USERNAME = select(User).where(User.username == bindparam("username"))


async def get_by_username(session: DbSession, username: str) -> User | None:
    return await session.scalar(_BY_USERNAME, {"username": username})


async def list_all(session: DbSession) -> Sequence[User]:
    return (await session.scalars(select(User).order_by(User.id))).all()


async def list_agents(session: DbSession) -> Sequence[User]:
    query = select(User).where(User.role == Role.agent).order_by(User.display_name, User.id)
    return (await session.scalars(query)).all()


_NAMES = select(User.id, User.display_name).where(User.id.in_(bindparam("ids", expanding=True)))


async def names(session: DbSession, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = (await session.execute(_NAMES, {"ids": sorted(user_ids)})).all()
    return {int(i): str(n) for i, n in rows}


def _skills(dialect: str) -> TableValuedAlias:
    """A user's skills (a JSON array) as rows with one column, `value`."""
    if dialect == "postgresql":
        return func.json_array_elements_text(User.skills).table_valued("value").render_derived()
    return func.json_each(User.skills).table_valued("value")


_AVAILABLE_AGENT = (User.role == Role.agent, User.status == AgentStatus.available)
_ANY_AVAILABLE = select(exists().where(*_AVAILABLE_AGENT))


async def any_available(session: DbSession) -> bool:
    return bool(await session.scalar(_ANY_AVAILABLE))


def _free_agent(dialect: str, *, excluding: bool, only: bool = False) -> Select[User]:
    """The available agent with the skill who has been idle longest, locked; rows another
    transaction holds are skipped (SKIP LOCKED), never waited for."""
    skills = _skills(dialect)
    has_skill = exists(select(1).select_from(skills).where(skills.c.value == bindparam("skill")))
    query = (
        select(User)
        .where(*_AVAILABLE_AGENT, has_skill)
        .order_by(User.status_since, User.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if excluding:
        query = query.where(User.id.not_in(bindparam("excluding", expanding=True)))
    if only:
        query = query.where(User.id == bindparam("only"))
    return query


_FREE_AGENT = {(d, x): _free_agent(d, excluding=x) for d in DIALECTS for x in (False, True)}
_FREE_AGENT_ONLY = {d: _free_agent(d, excluding=False, only=True) for d in DIALECTS}


async def free_agent(
    session: DbSession, *, queue: str, excluding: Sequence[int] = (), only: int | None = None
) -> User | None:
    """only: that agent, if available with the skill (a repeat caller's earlier agent)."""
    if only is not None:
        params: dict[str, object] = {"skill": queue, "only": only}
        return await session.scalar(_FREE_AGENT_ONLY[dialect_name(session)], params)
    query = _FREE_AGENT[dialect_name(session), bool(excluding)]
    params = {"skill": queue}
    if excluding:
        params["excluding"] = list(excluding)
    return await session.scalar(query, params)


def _free_skills(dialect: str) -> Select[str]:
    skills = _skills(dialect)
    return (
        select(skills.c.value)
        .select_from(User)
        .join(skills, true())
        .where(*_AVAILABLE_AGENT)
        .distinct()
    )


_FREE_SKILLS = {d: _free_skills(d) for d in DIALECTS}


async def free_skills(session: DbSession) -> set[str]:
    """The skills of the agents available now."""
    return {str(v) for v in (await session.scalars(_FREE_SKILLS[dialect_name(session)])).all()}


def _per_skill(dialect: str) -> Select[str, int, int]:
    skills = _skills(dialect)
    available = func.sum(case((User.status == AgentStatus.available, 1), else_=0))
    return (
        select(skills.c.value, func.count(), available)
        .select_from(User)
        .join(skills, true())
        .where(User.role == Role.agent, User.status != AgentStatus.offline)
        .group_by(skills.c.value)
    )


_PER_SKILL = {d: _per_skill(d) for d in DIALECTS}


async def per_skill(session: DbSession) -> dict[str, tuple[int, int]]:
    """skill -> (agents signed in, agents available): a few rows, not one per agent."""
    rows = (await session.execute(_PER_SKILL[dialect_name(session)])).all()
    return {str(name): (int(signed_in), int(free or 0)) for name, signed_in, free in rows}


_DUE_WRAPUPS = (
    select(User)
    .where(User.status == AgentStatus.wrapup, User.wrapup_until <= bindparam("now"))
    .with_for_update(skip_locked=True)
)


async def due_wrapups(session: DbSession, *, now: datetime) -> Sequence[User]:
    return (await session.scalars(_DUE_WRAPUPS, {"now": now})).all()


_NEXT_WRAPUP_END = select(func.min(User.wrapup_until)).where(User.status == AgentStatus.wrapup)


async def next_wrapup_end(session: DbSession) -> datetime | None:
    return await session.scalar(_NEXT_WRAPUP_END)
