"""The reports' queries: plain functions of a synchronous Session, so that the service can run
them in a thread of their own on SQLite, or through AsyncSession.run_sync on PostgreSQL.

A period is the calls handed off to the centre (first_queued_at) from `start` up to `end`,
read through the index on that column. The few seconds-between-two-times expressions differ by
database; everything else is the same SQL on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, RowMapping, case, cast, func, literal, select
from sqlalchemy.orm import Session

from app.calls.models import AskedAgain, Call, Transfer
from app.calls.states import CallState
from app.db import DbSession
from app.reports.models import ExceptionMark
from app.users.models import User

# The escalation reasons whose calls hold the caller's own words the phone tree did not know.
EXCEPTION_REASONS = ("unscripted", "no_match")


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _epoch(session: Session, column: Any) -> ColumnElement[float]:
    """Seconds since 1970 of a stored time."""
    if _dialect(session) == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return cast(func.extract("epoch", column), Float)


def group_key(by: str) -> Any:
    return Call.queue if by == "queue" else Call.agent_id


def _period(start: datetime, end: datetime) -> tuple[ColumnElement[bool], ...]:
    return (Call.first_queued_at >= start, Call.first_queued_at < end)


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


_TRANSFERS_OF_CALL = (
    select(func.count(Transfer.id)).where(Transfer.call_id == Call.id).scalar_subquery()
)
_ASKED_AGAIN_OF_CALL = (
    select(func.count(AskedAgain.id)).where(AskedAgain.call_id == Call.id).scalar_subquery()
)

# A statement that reads nothing: it begins the transaction of a session that has none yet.
BEGIN = select(literal(1))


def counts(
    session: Session, *, by: str, start: datetime, end: datetime, service_level_s: float
) -> Sequence[RowMapping]:
    """Per group key (null included): the figures that are sums. Transfers are an agent's to a
    queue or an agent, an escalation by an agent, a supervisor's assignment or move."""
    answered = Call.first_connected_at.is_not(None)
    stmt = (
        select(
            group_key(by).label("key"),
            func.count().label("calls"),
            _flag(answered).label("answered"),
            _flag(Call.state == CallState.abandoned).label("abandoned"),
            _flag(answered & (Call.waited_s <= service_level_s)).label("in_service_level"),
            _flag(Call.escalation_reason.is_not(None)).label("escalations"),
            # A probe of transfers' call_id index per call: joined instead, SQLite's planner
            # may walk every call of the table to group them.
            func.coalesce(func.sum(_TRANSFERS_OF_CALL), 0).label("transfers"),
            func.coalesce(func.sum(_ASKED_AGAIN_OF_CALL), 0).label("asked_again"),
            func.count(Call.csat).label("csat_count"),
            func.coalesce(func.sum(Call.csat), 0).label("csat_sum"),
            *(_flag(Call.csat == score).label(f"csat_{score}") for score in range(1, 6)),
            _flag(Call.had_to_repeat.is_(True)).label("had_to_repeat"),
            *(
                _flag(Call.sentiment == mood).label(f"sentiment_{mood}")
                for mood in ("positive", "neutral", "negative")
            ),
        )
        .where(*_period(start, end))
        .group_by(group_key(by))
    )
    return session.execute(stmt).mappings().all()


def durations(session: Session, *, by: str, start: datetime, end: datetime) -> Sequence[Any]:
    """(key, answered, abandoned, waited_s, handle_s) of each answered or abandoned call: the
    percentiles are taken of these. handle_s, answer to wrap, is null until the call is wrapped."""
    answered = Call.first_connected_at.is_not(None)
    abandoned = Call.state == CallState.abandoned
    handle = case(
        (
            answered & (Call.state == CallState.ended),
            _epoch(session, Call.ended_at) - _epoch(session, Call.first_connected_at),
        ),
        else_=None,
    )
    stmt = select(
        group_key(by), answered, abandoned, Call.waited_s, handle.label("handle_s")
    ).where(*_period(start, end), answered | abandoned)
    return session.execute(stmt).all()


def repeats(
    session: Session, *, by: str, start: datetime, end: datetime, window_s: float
) -> Sequence[Any]:
    """(key, caller) of each call of the period that follows, within window_s, an earlier call
    of the same caller (the customer, else the number) about the same intent (else the same
    queue). The earlier call may fall in the window before the period."""
    number = case((Call.customer_id.is_(None), Call.caller_number), else_=None)
    topic = func.coalesce(Call.intent, Call.queue)
    # Partitioned and ordered by the stored columns themselves (times sort as they compare):
    # the seconds are worked out only for the few rows that come out.
    earlier = func.lag(Call.first_queued_at).over(
        partition_by=(Call.customer_id, number, topic), order_by=Call.first_queued_at
    )
    calls = (
        select(
            group_key(by).label("key"),
            Call.customer_id.label("customer_id"),
            number.label("number"),
            Call.first_queued_at.label("at"),
            earlier.label("earlier"),
        )
        .where(*_period(start - timedelta(seconds=window_s), end))
        .subquery()
    )
    gap = _epoch(session, calls.c.at) - _epoch(session, calls.c.earlier)
    stmt = select(calls.c.key, calls.c.customer_id, calls.c.number).where(
        calls.c.at >= start, calls.c.earlier.is_not(None), gap <= window_s
    )
    return [
        (key, f"c{customer}" if customer is not None else f"n{number}")
        for key, customer, number in session.execute(stmt)
    ]


def agent_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}


def exception_utterances(
    session: Session, *, start: datetime, end: datetime, limit: int
) -> Sequence[Any]:
    """(id, utterance, queue, state, disposition) of the period's calls escalated because the
    phone tree did not know what the caller said, newest first, at most limit."""
    stmt = (
        select(Call.id, Call.utterance, Call.queue, Call.state, Call.disposition)
        .where(
            *_period(start, end),
            Call.escalation_reason.in_(EXCEPTION_REASONS),
            Call.utterance.is_not(None),
        )
        .order_by(Call.first_queued_at.desc(), Call.id.desc())
        .limit(limit)
    )
    return session.execute(stmt).all()


def marked_keys(session: Session) -> set[str]:
    """The terms_key of every group a supervisor marked: a few rows, read whole."""
    return set(session.scalars(select(ExceptionMark.terms_key)))


async def mark_by_key(session: DbSession, terms_key: str) -> ExceptionMark | None:
    found: ExceptionMark | None = await session.scalar(
        select(ExceptionMark).where(ExceptionMark.terms_key == terms_key)
    )
    return found


def add_mark(session: DbSession, mark: ExceptionMark) -> None:
    session.add(mark)
