"""Wire schemas of customers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.calls.states import CallState
from app.validation import E164, AccountNumber, Name, Pin

Segment = Literal["standard", "vip", "at_risk"]


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    account_number: AccountNumber
    pin: Pin
    phone_numbers: list[E164] = Field(default_factory=list, max_length=10)
    segment: Segment = "standard"
    language: Literal["en", "es"] = "en"


class CustomerEffort(BaseModel):
    """The effort scores of the customer's calls that are over, summed."""

    calls: int
    score: float


class CustomerBrief(BaseModel):
    """The customer as the call context shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    account_number: str
    segment: str
    phone_numbers: list[str]
    # Three wrong PINs lock verification for 15 minutes; a supervisor can lift it.
    locked: bool = False
    effort: CustomerEffort | None = None


class RecentCall(BaseModel):
    id: int
    state: CallState
    started_at: datetime
    intent: str | None
    queue: str | None
    escalation_reason: str | None
    disposition: str | None
    sentiment: str | None
    csat: int | None
    had_to_repeat: bool | None
    wait_s: float | None
    transfers: int
    effort: float | None = None


class CustomerRead(CustomerBrief):
    language: str
    created_at: datetime


class CustomerDetail(CustomerRead):
    recent_calls: list[RecentCall]
