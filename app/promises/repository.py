"""Queries of promises (the call context's statement built once, at import: see
app/calls/repository.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from sqlalchemy import Select, bindparam, case, func, select
from sqlalchemy.orm import aliased

from app.db import DbSession, get_by_pk, get_locked
from app.promises.models import Promise
from app.users.models import User

_MADE_BY, _KEPT_BY = aliased(User), aliased(User)
PromiseRow = tuple[Promise, str | None, str | None]
Named = Select[Promise, str | None, str | None]


def add(session: DbSession, promise: Promise) -> None:
    session.add(promise)


async def get(session: DbSession, promise_id: int, *, lock: bool = False) -> Promise | None:
    if lock:
        return await get_locked(session, Promise, promise_id)
    return await get_by_pk(session, Promise, promise_id)


def _named() -> Named:
    """Promises with the names of who made and who kept them."""
    query: Named = select(Promise, _MADE_BY.display_name, _KEPT_BY.display_name)
    return query.outerjoin(_MADE_BY, _MADE_BY.id == Promise.made_by_id).outerjoin(
        _KEPT_BY, _KEPT_BY.id == Promise.kept_by_id
    )


# Open ones first, the soonest due first; then those kept, the latest kept first.
_ORDER = (
    case((Promise.kept_at.is_(None), 0), else_=1),
    Promise.due,
    Promise.kept_at.desc(),
    Promise.id,
)


def _of_customers() -> Named:
    rank = func.row_number().over(partition_by=Promise.customer_id, order_by=_ORDER).label("rank")
    ranked = (
        select(Promise.id, rank)
        .where(Promise.customer_id.in_(bindparam("customer_ids", expanding=True)))
        .subquery()
    )
    return (
        _named()
        .join(ranked, ranked.c.id == Promise.id)
        .where(ranked.c.rank <= bindparam("per_customer"))
        .order_by(*_ORDER)
    )


_OF_CUSTOMERS = _of_customers()


async def of_customers(
    session: DbSession, customer_ids: Collection[int], *, per_customer: int
) -> Sequence[PromiseRow]:
    """Each customer's promises, open ones first (soonest due first), at most per_customer."""
    params = {"customer_ids": sorted(customer_ids), "per_customer": per_customer}
    rows = (await session.execute(_OF_CUSTOMERS, params)).all()
    return [(p, m, k) for p, m, k in rows]


async def named(session: DbSession, promise_id: int) -> PromiseRow | None:
    query = _named().where(Promise.id == promise_id)
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1], row[2])


async def open_promises(
    session: DbSession, *, due_before: date | None, limit: int
) -> Sequence[PromiseRow]:
    """Promises not kept yet, soonest due first; due_before: only those due before that day."""
    query = _named().where(Promise.kept_at.is_(None))
    if due_before is not None:
        query = query.where(Promise.due < due_before)
    query = query.order_by(Promise.due, Promise.id).limit(limit)
    return [(p, m, k) for p, m, k in (await session.execute(query)).all()]
