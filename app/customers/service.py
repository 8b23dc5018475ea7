"""Data access for customers: create, get, recent calls."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import hash_secret_async
from app.calls.models import Call, CallAgent, Transfer
from app.customers.models import Customer, CustomerPhone
from app.customers.schemas import CustomerCreate, CustomerDetail, CustomerRead, RecentCall
from app.db import utcnow
from app.errors import Conflict
from app.users.models import Role
from app.users.repository import UserRow

RECENT_CALLS = 20


async def get(session: AsyncSession, *, customer_id: int) -> Customer | None:
    return await session.get(Customer, customer_id)


async def get_by_account(session: AsyncSession, *, account_number: str) -> Customer | None:
    query = select(Customer).where(Customer.account_number == account_number)
    return (await session.execute(query)).scalar_one_or_none()


async def create(session: AsyncSession, *, data: CustomerCreate) -> Customer:
    if await get_by_account(session, account_number=data.account_number) is not None:
        raise Conflict(f"account number {data.account_number} exists")
    phones = list(dict.fromkeys(data.phone_numbers))
    customer = Customer(
        name=data.name,
        account_number=data.account_number,
        pin_hash=await hash_secret_async(data.pin),
        phone_numbers=phones,
        segment=data.segment,
        language=data.language,
    )
    session.add(customer)
    try:
        async with session.begin_nested():
            await session.flush()
            session.add_all(CustomerPhone(number=n, customer_id=customer.id) for n in phones)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"account number {data.account_number} exists") from exc
    return customer


async def visible_to(session: AsyncSession, *, customer: Customer, user: UserRow) -> bool:
    """Supervisors see every customer; an agent, those of calls offered or assigned to them."""
    if user.role == Role.supervisor:
        return True
    query = (
        select(CallAgent.call_id)
        .join(Call, Call.id == CallAgent.call_id)
        .where(CallAgent.agent_id == user.id, Call.customer_id == customer.id)
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


def to_read(customer: Customer) -> CustomerRead:
    locked = customer.locked_until is not None and customer.locked_until > utcnow()
    read = CustomerRead.model_validate(customer, from_attributes=True)
    read.locked = locked
    return read


async def detail(session: AsyncSession, *, customer: Customer) -> CustomerDetail:
    transfers = select(func.count(Transfer.id)).where(Transfer.call_id == Call.id).scalar_subquery()
    query = (
        select(Call, transfers)
        .where(Call.customer_id == customer.id)
        .order_by(Call.created_at.desc(), Call.id.desc())
        .limit(RECENT_CALLS)
    )
    recent = []
    for call, n_transfers in (await session.execute(query)).all():
        wait = None
        if call.first_queued_at is not None:
            until = call.first_connected_at or call.ended_at or utcnow()
            wait = round((until - call.first_queued_at).total_seconds(), 1)
        recent.append(
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
                wait_s=wait,
                transfers=n_transfers,
            )
        )
    return CustomerDetail(**to_read(customer).model_dump(), recent_calls=recent)
