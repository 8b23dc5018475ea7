"""Wire schemas of the reports: the period asked for, the experience figures, the exceptions."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)


class GroupBy(enum.StrEnum):
    queue = "queue"
    agent = "agent"


class Period(BaseModel):
    """`from` inclusive, `to` exclusive: ISO 8601 with a time zone. The bound on its length is
    a setting (TELLONCE_REPORT_MAX_DAYS), checked by the service."""

    model_config = ConfigDict(extra="forbid")

    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime

    @field_validator("from_", "to")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the time is out of range") from None

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.from_ >= self.to:
            raise ValueError("from must be before to")
        return self


class ExperienceQuery(Period):
    group_by: GroupBy = GroupBy.queue


class ExceptionsQuery(Period):
    pass


class DraftQuery(ExceptionsQuery):
    """The group is named by its label, as the exceptions report of the same period gives it."""

    label: str = Field(min_length=1, max_length=400)


Term = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+$", max_length=64)]


class MarkCreate(BaseModel):
    """A group of the exceptions report, by its `terms`, to add to the phone tree."""

    model_config = ConfigDict(extra="forbid")

    terms: list[Term] = Field(min_length=1, max_length=5)
    note: str | None = Field(default=None, max_length=500)


class MarkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    terms: list[str]
    note: str | None
    marked_by_id: int | None
    marked_at: datetime


class Figures(BaseModel):
    """One row of the experience report. Rates are fractions from 0 to 1; a rate, mean or
    percentile over no calls is null."""

    calls: int
    answered: int
    abandoned: int
    abandon_rate: float | None
    abandon_p50_s: float | None
    service_level: float | None
    wait_p50_s: float | None
    wait_p90_s: float | None
    handle_p50_s: float | None
    transfers: int
    transfers_per_100: float | None
    escalations: int
    escalations_per_100: float | None
    # The escalations' reasons (unscripted, no_match, caller_requested...), most first.
    escalation_reasons: dict[str, int]
    csat_mean: float | None
    csat_count: int
    csat_distribution: dict[str, int]
    had_to_repeat: int
    had_to_repeat_per_100: float | None
    asked_again: int
    asked_again_per_100: float | None
    repeat_calls: int
    repeat_callers: int
    sentiment: dict[str, int]


class Group(Figures):
    key: str | int
    # The agent's display name when grouped by agent; else null.
    name: str | None = None


class HourFigures(BaseModel):
    """The calls handed off within one hour of the period (from its start), all queues."""

    at: datetime
    calls: int
    answered: int
    abandoned: int
    wait_p50_s: float | None
    wait_p90_s: float | None


class ExperienceOut(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    group_by: GroupBy
    service_level_s: float
    total: Figures
    groups: list[Group]
    # Every hour of the period, first to last, for the calls-and-waits chart.
    by_hour: list[HourFigures]


class ExceptionGroup(BaseModel):
    label: str
    terms: list[str]
    count: int
    examples: list[str]
    call_ids: list[int]
    # Where the calls ended up, and how the agents closed them (the wrap's disposition, or
    # "open" for a call not wrapped yet, "abandoned" for a caller who hung up first).
    queues: dict[str, int]
    resolutions: dict[str, int]
    # A supervisor marked the group "add to the phone tree" (POST /api/reports/exceptions/marks).
    marked: bool = False


class ExceptionsOut(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    utterances: int
    groups: list[ExceptionGroup]
