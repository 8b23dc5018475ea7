"""Customers (account holders) and the record of failed verifications for lockout."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    account_number: Mapped[str] = mapped_column(String(8), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(255))
    phone_numbers: Mapped[list[Any]] = mapped_column(default=list)
    segment: Mapped[str] = mapped_column(String(16), default="standard")
    language: Mapped[str] = mapped_column(String(8), default="en")
    # Verification is refused until then (three wrong PINs); a supervisor's unlock sets it to
    # the moment of the unlock, and failures before it no longer count.
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def locked(self) -> bool:
        """Verification locked now (read by the schemas as the field `locked`)."""
        return self.locked_until is not None and self.locked_until > utcnow()


class CustomerPhone(Base):
    """One row per phone number, so that a caller number is matched by an index."""

    __tablename__ = "customer_phones"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class VerificationFailure(Base):
    __tablename__ = "verification_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_number: Mapped[str] = mapped_column(String(16), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
