"""Promises: made at a follow_up wrap, shown on the customer's next calls, kept by an agent
serving the customer or by a supervisor; the overdue ones listed for supervisors."""

from __future__ import annotations

from datetime import date, datetime

from app.audit import service as audit
from app.calls import repository as calls
from app.calls.models import Call
from app.db import DbSession, utcnow
from app.errors import Conflict, Invalid, NotFound
from app.promises import repository as promises
from app.promises.models import Promise
from app.promises.repository import PromiseRow
from app.promises.schemas import PromiseIn, PromiseOut
from app.users.models import Role, User
from app.users.schemas import Person

LIST_LIMIT = 500


def to_out(row: PromiseRow, today: date) -> PromiseOut:
    promise, made_by, kept_by = row
    return PromiseOut(
        id=promise.id,
        customer_id=promise.customer_id,
        call_id=promise.call_id,
        text=promise.text,
        due=promise.due,
        made_by=_person(promise.made_by_id, made_by),
        made_at=promise.made_at,
        kept_at=promise.kept_at,
        kept_by=_person(promise.kept_by_id, kept_by),
        overdue=promise.kept_at is None and promise.due < today,
    )


def _person(user_id: int | None, name: str | None) -> Person | None:
    return None if user_id is None or name is None else Person(id=user_id, display_name=name)


def make(session: DbSession, *, call: Call, by: User, data: PromiseIn, now: datetime) -> None:
    """At a follow_up wrap: what the agent promised the call's customer, and by when."""
    if call.customer_id is None:
        raise Invalid(
            "the call has no customer: a promise is kept for a known customer",
            loc=("body", "promise"),
        )
    if data.due < now.date():
        raise Invalid("a promise is due today or later", loc=("body", "promise", "due"))
    promises.add(
        session,
        Promise(
            customer_id=call.customer_id,
            call_id=call.id,
            text=data.text,
            due=data.due,
            made_by_id=by.id,
            made_at=now,
        ),
    )


async def keep(session: DbSession, *, promise_id: int, user: User) -> PromiseOut:
    """Mark a promise kept: a supervisor, or an agent with a call of its customer now (on
    offer, on the line or in wrap-up); anyone else is told it does not exist."""
    promise = await promises.get(session, promise_id, lock=True)
    if promise is None:
        raise NotFound("promise not found")
    if user.role != Role.supervisor and (
        await calls.serving(session, agent_id=user.id, customer_id=promise.customer_id) is None
    ):
        raise NotFound("promise not found")
    if promise.kept_at is not None:
        raise Conflict("the promise was marked kept already")
    now = utcnow()
    promise.kept_at = now
    promise.kept_by_id = user.id
    if user.role == Role.supervisor:
        audit.record(
            session,
            by=user,
            action="promise.kept",
            object_type="promise",
            object_id=promise.id,
            call_id=promise.call_id,
            details={"customer_id": promise.customer_id},
        )
    await session.flush()
    row = await promises.named(session, promise.id)
    assert row is not None
    return to_out(row, now.date())


async def listed(session: DbSession, *, overdue: bool) -> list[PromiseOut]:
    """The promises not kept yet, soonest due first; overdue: only those past their due day."""
    today = utcnow().date()
    rows = await promises.open_promises(
        session, due_before=today if overdue else None, limit=LIST_LIMIT
    )
    return [to_out(row, today) for row in rows]
