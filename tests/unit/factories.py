"""Factories for test data, written straight to the database with the ORM models."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from app.auth.service import hash_secret
from app.calls import repository as calls
from app.calls.models import Call
from app.calls.states import CallState
from app.context import AppContext
from app.customers.models import Customer, CustomerPhone
from app.db import utcnow
from app.uow import UnitOfWork
from app.users import repository as users
from app.users.models import AgentStatus, Role, User

# One hash for every factory-made login and PIN: argon2 is slow on purpose.
SECRET = "factory-secret-1"
_HASH = hash_secret(SECRET)
_numbers = itertools.count(1)
T = TypeVar("T")

# The in_uow fixture: run work(uow) in a unit of work of its own, committed.
InUow = Callable[[Callable[[UnitOfWork], Awaitable[Any]]], Awaitable[Any]]


async def state_of(ctx: AppContext, call_id: int) -> tuple[CallState, int | None]:
    """A call's state and agent, as committed."""
    async with ctx.reading() as session:
        call = await calls.get(session, call_id)
        assert call is not None
        return call.state, call.agent_id


async def status_of(ctx: AppContext, user_id: int) -> AgentStatus:
    """A user's status, as committed."""
    async with ctx.reading() as session:
        user = await users.get(session, user_id)
        assert user is not None
        return user.status


class Factory:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def agent(
        self,
        name: str | None = None,
        *,
        skills: list[str] | None = None,
        status: AgentStatus = AgentStatus.available,
        idle_since: datetime | None = None,
        role: Role = Role.agent,
    ) -> User:
        n = next(_numbers)
        user = User(
            username=name or f"agent{n}",
            password_hash=_HASH,
            display_name=(name or f"agent{n}").title(),
            role=role,
            skills=skills if skills is not None else ["billing"],
            status=status,
            status_since=idle_since or utcnow(),
        )
        return await self._add(user)

    async def customer(self, *, segment: str = "standard", phone: str | None = None) -> Customer:
        n = next(_numbers)
        customer = Customer(
            name=f"Customer {n}",
            account_number=f"{n:08d}",
            pin_hash=_HASH,
            phone_numbers=[phone or f"+1555{n:07d}"],
            segment=segment,
            language="en",
        )
        customer = await self._add(customer)
        await self._add(CustomerPhone(number=customer.phone_numbers[0], customer_id=customer.id))
        return customer

    async def call(
        self,
        *,
        queue: str | None = "billing",
        state: CallState = CallState.queued,
        waited_s: float = 0.0,
        vip: bool = False,
        **fields: Any,
    ) -> Call:
        now = utcnow()
        queued_at = now - timedelta(seconds=waited_s) if state != CallState.ivr else None
        values: dict[str, Any] = {
            "state": state,
            "caller_number": f"+1555{next(_numbers):07d}",
            "queue": queue if state != CallState.ivr else None,
            "vip": vip,
            "collected": {},
            "rejected_by": [],
            "created_at": (queued_at or now) - timedelta(seconds=30),
            "queued_at": queued_at,
            "first_queued_at": queued_at,
            "waiting_since": queued_at if state in (CallState.queued, CallState.offered) else None,
        }
        call = Call(**(values | fields))
        return await self._add(call)

    async def _add(self, row: T) -> T:
        async with self.ctx.transaction() as session:
            session.add(row)
        return row
