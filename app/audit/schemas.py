"""Wire schemas of the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.audit.models import Actor
from app.validation import Id

MAX_LIMIT = 500


class AuditQuery(BaseModel):
    """The filters of GET /api/audit, all optional; `from` inclusive, `to` exclusive."""

    model_config = ConfigDict(extra="forbid")

    from_: AwareDatetime | None = Field(default=None, alias="from")
    to: AwareDatetime | None = None
    action: str | None = Field(default=None, pattern=r"^[a-z][a-z_]{0,31}\.[a-z_]{1,31}$")
    user_id: Id | None = None
    call_id: Id | None = None
    # The id of the last entry of the previous page: the next page starts below it.
    before_id: Id | None = None
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)

    @field_validator("from_", "to")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A time so near year 1 or 9999 that UTC falls outside the calendar is refused here,
        # not in the database.
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the time is out of range") from None

    @model_validator(mode="after")
    def _ordered(self) -> AuditQuery:
        if self.from_ is not None and self.to is not None and self.from_ > self.to:
            raise ValueError("from must not be after to")
        return self


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: Actor
    actor_id: int | None
    action: str
    object_type: str | None
    object_id: int | None
    call_id: int | None
    user_id: int | None
    request_id: str | None
    details: dict[str, Any]
