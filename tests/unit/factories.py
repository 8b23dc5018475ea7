"""Factories for test data, written straight to the database with the ORM models."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any, TypeVar

from app.auth.service import hash_secret
from app.calls.models import Call
from app.calls.states import CallState
from app.context import AppContext
from app.customers.models import Customer, CustomerPhone
from app.db import utcnow
from app.users.models import AgentStatus, Role, User

# One hash for every factory-made login and PIN: argon2 is slow on purpose.
SECRET = "factory-secret-1"
_HASH = hash_secret(SECRET)
_numbers = itertools.count(1)
T = TypeVar("T")


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
