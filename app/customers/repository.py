"""Queries of customers, their phone numbers and their failed verifications (the phone tree's
statements built once, at import: see app/calls/repository.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, select

from app.calls.models import Call, CallAgent, Transfer
from app.customers.models import Customer, CustomerPhone, VerificationFailure
from app.db import DbSession, get_by_pk, get_locked


async def get(session: DbSession, customer_id: int) -> Customer | None:
    return await get_by_pk(session, Customer, customer_id)


async def get_locked_by_id(session: DbSession, customer_id: int) -> Customer | None:
    return await get_locked(session, Customer, customer_id)


_BY_ACCOUNT = select(Customer).where(Customer.account_number == bindparam("account"))


async def get_by_account(
    session: DbSession, account_number: str, *, lock: bool = False
) -> Customer | None:
    customer = await session.scalar(_BY_ACCOUNT, {"account": account_number})
    if customer is not None and lock:
        return await get_locked(session, Customer, customer.id)
    return customer


_PIN_HASH = select(Customer.pin_hash).where(Customer.account_number == bindparam("account"))


async def pin_hash(session: DbSession, account_number: str) -> str | None:
    return await session.scalar(_PIN_HASH, {"account": account_number})


_BY_PHONE = (
    select(Customer)
    .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
    .where(CustomerPhone.number == bindparam("number"))
    .order_by(Customer.id)
    .limit(1)
)


async def by_phone(session: DbSession, number: str) -> Customer | None:
    """The customer with this phone number (the oldest, should two share it)."""
    return await session.scalar(_BY_PHONE, {"number": number})


_BY_IDS = select(Customer).where(Customer.id.in_(bindparam("ids", expanding=True)))


async def briefs(session: DbSession, customer_ids: Collection[int]) -> Sequence[Customer]:
    return (await session.scalars(_BY_IDS, {"ids": sorted(customer_ids)})).all()


async def add(session: DbSession, customer: Customer) -> Customer:
    session.add(customer)
    await session.flush()
    session.add_all(
        CustomerPhone(number=n, customer_id=customer.id) for n in customer.phone_numbers
    )
    await session.flush()
    return customer


_FAILURES_SINCE = select(func.count()).where(
    VerificationFailure.account_number == bindparam("account"),
    VerificationFailure.at > bindparam("since"),
)


async def failures_since(session: DbSession, account_number: str, *, since: datetime) -> int:
    params = {"account": account_number, "since": since}
    return int(await session.scalar(_FAILURES_SINCE, params) or 0)


def add_failure(session: DbSession, *, account_number: str, call_id: int, at: datetime) -> None:
    session.add(VerificationFailure(account_number=account_number, call_id=call_id, at=at))


async def seen_by(session: DbSession, *, customer_id: int, agent_id: int) -> bool:
    """Whether one of the customer's calls was ever offered or assigned to the agent."""
    query = (
        select(CallAgent.call_id)
        .join(Call, Call.id == CallAgent.call_id)
        .where(CallAgent.agent_id == agent_id, Call.customer_id == customer_id)
        .limit(1)
    )
    return (await session.scalar(query)) is not None


async def recent_calls(
    session: DbSession, customer_id: int, *, limit: int
) -> Sequence[tuple[Call, int]]:
    """The customer's newest calls, each with its number of transfers."""
    transfers = select(func.count(Transfer.id)).where(Transfer.call_id == Call.id).scalar_subquery()
    query = (
        select(Call, transfers)
        .where(Call.customer_id == customer_id)
        .order_by(Call.created_at.desc(), Call.id.desc())
        .limit(limit)
    )
    return [(call, int(n)) for call, n in (await session.execute(query)).all()]
