"""Customers: created by supervisors, read by whoever handled one of their calls."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.calls import repository as calls
from app.calls.context import wait_s
from app.customers import repository as customers
from app.customers.models import Customer
from app.customers.schemas import (
    CustomerCreate,
    CustomerDetail,
    CustomerEffort,
    CustomerRead,
    RecentCall,
)
from app.db import DbSession, utcnow
from app.errors import Conflict, NotFound
from app.users.models import Role, User

RECENT_CALLS = 20


async def create(session: DbSession, *, data: CustomerCreate, pin_hash: str) -> Customer:
    """pin_hash: the PIN hashed by the caller, before the transaction (app/auth/service.py)."""
    if await customers.get_by_account(session, data.account_number) is not None:
        raise Conflict(f"account number {data.account_number} exists")
    customer = Customer(
        name=data.name,
        account_number=data.account_number,
        pin_hash=pin_hash,
        phone_numbers=list(dict.fromkeys(data.phone_numbers)),
        segment=data.segment,
        language=data.language,
    )
    try:
        async with session.begin_nested():
            await customers.add(session, customer)
    except IntegrityError as exc:  # a concurrent create of the same account
        raise Conflict(f"account number {data.account_number} exists") from exc
    return customer


async def visible(session: DbSession, *, customer_id: int, user: User) -> Customer:
    """Supervisors see every customer; an agent, those of calls offered or assigned to them."""
    customer = await customers.get(session, customer_id)
    if customer is None or (
        user.role != Role.supervisor
        and not await customers.seen_by(session, customer_id=customer.id, agent_id=user.id)
    ):
        raise NotFound("customer not found")
    return customer


def to_read(customer: Customer) -> CustomerRead:
    return CustomerRead.model_validate(customer, from_attributes=True)


async def unlock(session: DbSession, *, customer_id: int, by: User) -> Customer:
    """Lift a verification lock now: the caller may try again, with three fresh tries."""
    customer = await customers.get_locked_by_id(session, customer_id)
    if customer is None:
        raise NotFound("customer not found")
    now = utcnow()
    if customer.locked_until is not None and customer.locked_until > now:
        audit.customer_unlocked(session, customer, by=by, was_locked_until=customer.locked_until)
        customer.locked_until = now
    return customer


async def detail(session: DbSession, *, customer: Customer) -> CustomerDetail:
    now = utcnow()
    recent = [
        RecentCall(
            id=call.id,
            state=call.state,
            started_at=call.created_at,
            intent=call.intent,
            queue=call.queue,
            escalation_reason=call.escalation_reason,
            disposition=call.disposition,
            sentiment=call.sentiment,
            csat=call.csat,
            had_to_repeat=call.had_to_repeat,
            wait_s=wait_s(call, now),
            transfers=n_transfers,
            effort=call.effort_score,
        )
        for call, n_transfers in await customers.recent_calls(
            session, customer.id, limit=RECENT_CALLS
        )
    ]
    totals = (await calls.effort_totals(session, [customer.id])).get(customer.id)
    effort = None if totals is None else CustomerEffort(calls=totals[0], score=round(totals[1], 1))
    return CustomerDetail(
        **to_read(customer).model_dump(exclude={"effort"}), effort=effort, recent_calls=recent
    )
