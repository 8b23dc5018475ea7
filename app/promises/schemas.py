"""Wire schemas of promises."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from app.users.schemas import Person

PromiseText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class PromiseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: PromiseText
    # The day by which it is kept; today or later.
    due: date


class PromiseOut(BaseModel):
    id: int
    customer_id: int
    call_id: int | None
    text: str
    due: date
    made_by: Person | None
    made_at: datetime
    kept_at: datetime | None
    kept_by: Person | None
    # Open and past its due day (UTC).
    overdue: bool
