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

from sqlalchemy import (
    ColumnElement,
    Float,
    RowMapping,
    String,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session

from app.calls.models import AskedAgain, Call, Transfer
from app.calls.states import CallState
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


# The percentiles the experience report shows: (name, numerator, denominator) of p.
PERCENTILES = (("p50", 1, 2), ("p90", 9, 10))


def _nearest_rank(count: Any, numerator: int, denominator: int) -> Any:
    """ceil(p * count) for p = numerator / denominator, in integer division."""
    return (count * numerator + denominator - 1) // denominator


def percentiles(session: Session, *, by: str, start: datetime, end: datetime) -> Sequence[Any]:
    """(whole, key, kind, name, value): the nearest-rank p50 and p90 of the waits of answered
    calls ("wait"), of the waits before hanging up ("abandon") and of answer-to-wrap times of
    wrapped calls ("handle", at least 0), per group key (whole 0) and over the whole period
    (whole 1, key null). Ranked by the database, so that a month of values never becomes
    Python objects (which hold the interpreter, and so the server's event loop)."""
    answered = Call.first_connected_at.is_not(None)
    abandoned = Call.state == CallState.abandoned
    handle = _epoch(session, Call.ended_at) - _epoch(session, Call.first_connected_at)
    waits = select(
        group_key(by).label("key"),
        case((answered, literal("wait")), else_=literal("abandon")).label("kind"),
        Call.waited_s.label("value"),
    ).where(*_period(start, end), answered | abandoned)
    handles = select(
        group_key(by).label("key"),
        literal("handle").label("kind"),
        case((handle < 0, 0.0), else_=handle).label("value"),
    ).where(*_period(start, end), answered, Call.state == CallState.ended)
    values = waits.union_all(handles).cte("report_values")
    picks = []
    for whole, partition in ((0, (values.c.key, values.c.kind)), (1, (values.c.kind,))):
        ranked = select(
            values.c.key,
            values.c.kind,
            values.c.value,
            func.row_number().over(partition_by=partition, order_by=values.c.value).label("rank"),
            func.count().over(partition_by=partition).label("n"),
        ).subquery()
        for name, numerator, denominator in PERCENTILES:
            picks.append(
                select(
                    literal(whole),
                    ranked.c.key if not whole else literal(None),
                    ranked.c.kind,
                    literal(name),
                    ranked.c.value,
                ).where(ranked.c.rank == _nearest_rank(ranked.c.n, numerator, denominator))
            )
    return session.execute(picks[0].union_all(*picks[1:])).all()


def repeats(
    session: Session, *, by: str, start: datetime, end: datetime, window_s: float
) -> Sequence[Any]:
    """(whole, key, repeat calls, distinct callers): per group key (whole 0), and over the
    whole period (whole 1, key null). A repeat call follows, within window_s, an earlier call
    of the same caller (the customer, else the number) about the same intent (else the same
    queue); the earlier call may fall in the window before the period. Counted by the
    database: only the counts come out."""
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
    caller = case(
        (calls.c.customer_id.is_not(None), literal("c") + cast(calls.c.customer_id, String)),
        else_=literal("n") + calls.c.number,
    )
    found = (
        select(calls.c.key, caller.label("caller"))
        .where(calls.c.at >= start, calls.c.earlier.is_not(None), gap <= window_s)
        .cte("repeats")
    )
    per_key = select(
        literal(0),
        found.c.key,
        func.count(),
        func.count(found.c.caller.distinct()),
    ).group_by(found.c.key)
    whole = select(
        literal(1), literal(None), func.count(), func.count(found.c.caller.distinct())
    )
    return session.execute(per_key.union_all(whole)).all()


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
