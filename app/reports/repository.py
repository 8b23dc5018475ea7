"""The reports' queries. The reads are plain functions of a synchronous Session, so that the
service can run them in a thread of their own on SQLite, or through AsyncSession.run_sync on
PostgreSQL; the roll-up's writes (app/reports/rollup.py) are async, in a unit of work.

A period is the calls handed off to the centre (first_queued_at) from `start` up to `end`: the
roll-up rows of its whole hours and days, and the calls of the rest as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.calls.models import AskedAgain, Call, Transfer
from app.db import DbSession, dialect_name
from app.reports.models import ExceptionMark, ReportRollup
from app.users.models import User

# The escalation reasons whose calls hold the caller's own words the phone tree did not know.
EXCEPTION_REASONS = ("unscripted", "no_match")

# A statement that reads nothing: it begins the transaction of a session that has none yet.
BEGIN = select(literal(1))

# The same literal as the partial index ix_calls_not_rolled_up, so that SQLite uses it.
NOT_ROLLED_UP = Call.rolled_up == false()


def in_period(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(Call.first_queued_at >= start, Call.first_queued_at < end)


# --- calls read one by one ---------------------------------------------------------------------

_TRANSFERS_OF_CALL = (
    select(func.count(Transfer.id)).where(Transfer.call_id == Call.id).scalar_subquery()
)
_ASKED_AGAIN_OF_CALL = (
    select(func.count(AskedAgain.id)).where(AskedAgain.call_id == Call.id).scalar_subquery()
)

FACT_COLUMNS = (
    Call.id,
    Call.queue,
    Call.agent_id,
    Call.first_queued_at,
    Call.state,
    Call.first_connected_at,
    Call.ended_at,
    Call.waited_s,
    Call.escalation_reason,
    Call.csat,
    Call.had_to_repeat,
    Call.sentiment,
    Call.customer_id,
    Call.caller_number,
    Call.intent,
    _TRANSFERS_OF_CALL.label("transfers"),
    _ASKED_AGAIN_OF_CALL.label("asked_again"),
)


def facts(*where: ColumnElement[bool]) -> Select[Any]:
    """What the reports read of each call the conditions pick (first queued, so handed off)."""
    return select(*FACT_COLUMNS).where(Call.first_queued_at.is_not(None), *where)


def raw_calls(
    session: Session,
    *,
    edges: Sequence[tuple[datetime, datetime]],
    whole: tuple[datetime, datetime] | None,
) -> Sequence[Any]:
    """The calls the roll-ups do not hold: every call of the edges (the period's hours that are
    not whole), and the calls of the whole hours not rolled up yet (live, or just finished)."""
    ranges = [in_period(a, b) for a, b in edges]
    if whole is not None:
        ranges.append(and_(NOT_ROLLED_UP, in_period(*whole)))
    if not ranges:
        return []
    return session.execute(facts(or_(*ranges))).all()


def caller_history(
    customers: Iterable[int], numbers: Iterable[str], since: datetime, until: datetime
) -> list[Executable]:
    """The queries for (customer_id, caller_number, intent, queue, agent_id, first_queued_at)
    of the calls of these customers, and of these numbers, first queued in [since, until):
    one by each caller index, which a single OR of both would not use."""
    columns = (
        Call.customer_id,
        Call.caller_number,
        Call.intent,
        Call.queue,
        Call.agent_id,
        Call.first_queued_at,
    )
    found: list[Executable] = []
    if customers:
        found.append(
            select(*columns).where(Call.customer_id.in_(list(customers)), in_period(since, until))
        )
    if numbers:
        found.append(
            # A known customer's calls from these numbers come too; they are another caller
            # (to_facts keys callers by customer first), and a condition on customer_id here
            # would take SQLite to that column's index.
            select(*columns).where(Call.caller_number.in_(list(numbers)), in_period(since, until))
        )
    return found


# --- roll-ups ------------------------------------------------------------------------------------


def rollups(
    session: Session, *, dimension: str, grain: str, start: datetime, end: datetime
) -> Sequence[Any]:
    """(start, key, tally as JSON text) of the roll-up rows of one kind within [start, end). The
    text is decoded where the rows are added up (in a thread), not where they are read (on
    PostgreSQL, the event loop)."""
    stmt = select(ReportRollup.start, ReportRollup.key, cast(ReportRollup.tally, Text)).where(
        ReportRollup.dimension == dimension,
        ReportRollup.grain == grain,
        ReportRollup.start >= start,
        ReportRollup.start < end,
    )
    return session.execute(stmt).all()


def group_key(by: str) -> Any:
    return Call.queue if by == "queue" else Call.agent_id


def rolled_up_repeat_callers(
    session: Session, *, by: str, start: datetime, end: datetime, since: datetime
) -> tuple[dict[Any, int], int]:
    """Of the repeat calls rolled up within [start, end), per group key and in all, those whose
    caller made no repeat call (in that group; at all) from `since` (the period's start) until
    them: each caller's first, so one per caller. Counted from the index ix_calls_repeats
    alone (only the roll-up sets `repeats`)."""
    in_group = Call.prev_repeat_in_queue_at if by == "queue" else Call.prev_repeat_of_agent_at

    def firsts(prev: Any) -> Any:
        return func.coalesce(func.sum(case((or_(prev.is_(None), prev < since), 1), else_=0)), 0)

    key = group_key(by)
    stmt = (
        select(key, firsts(in_group), firsts(Call.prev_repeat_at))
        .where(Call.repeats == true(), in_period(start, end))
        .group_by(key)
    )
    per_key: dict[Any, int] = {}
    total = 0
    for k, group_firsts, all_firsts in session.execute(stmt):
        per_key[k] = int(group_firsts)
        total += int(all_firsts)
    return per_key, total


def _chunks(values: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


async def finished_not_rolled_up(session: DbSession, *, limit: int) -> Sequence[Any]:
    """Facts of finished calls not rolled up yet, first finished first, locked against another
    instance's pass (skipped, not waited for); calls never handed off come too, with no facts
    to add (first_queued_at null). A call has ended_at once it is over (wrapped, or abandoned):
    the partial index ix_calls_finished_not_rolled_up holds just these."""
    stmt = (
        select(*FACT_COLUMNS)
        .where(NOT_ROLLED_UP, Call.ended_at.is_not(None))
        .order_by(Call.ended_at)
        .limit(limit)
    )
    if dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update(of=Call, skip_locked=True)
    return (await session.execute(stmt)).all()


async def rows_of(session: DbSession, stmt: Executable) -> Sequence[Any]:
    return (await session.execute(stmt)).all()


async def mark_rolled_up(session: DbSession, marks: Sequence[dict[str, Any]]) -> None:
    """marks: {"id"} of each call, with the repeat columns set for those handed off (an UPDATE
    by primary key each); each is rolled up from now on."""
    if marks:
        await session.execute(update(Call), [{**mark, "rolled_up": True} for mark in marks])


_ROLLUP_KEY = (ReportRollup.dimension, ReportRollup.grain, ReportRollup.start, ReportRollup.key)
_UPSERT_ROLLUPS = {
    # Made if missing, locked either way (the update changes nothing), and read back: one
    # statement whose rows PostgreSQL locks in the order given.
    dialect: insert(ReportRollup)
    .on_conflict_do_update(index_elements=list(_ROLLUP_KEY), set_={"tally": ReportRollup.tally})
    .returning(ReportRollup.id, *_ROLLUP_KEY, ReportRollup.tally)
    for dialect, insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}

RollupKey = tuple[str, str, datetime, str]


async def locked_rollups(session: DbSession, keys: Sequence[RollupKey]) -> dict[RollupKey, Any]:
    """The roll-up rows of these keys, made (empty) where missing and locked for this
    transaction, in the order of their keys: two instances' passes then never wait on each
    other in a ring."""
    found: dict[RollupKey, Any] = {}
    for chunk in _chunks(sorted(set(keys)), 500):
        values = [
            {"dimension": d, "grain": g, "start": t, "key": k, "tally": {}} for d, g, t, k in chunk
        ]
        stmt = _UPSERT_ROLLUPS[dialect_name(session)].values(values)
        for row in await session.execute(stmt):
            found[(row.dimension, row.grain, row.start, row.key)] = row
    return found


async def set_tallies(session: DbSession, tallies: Sequence[dict[str, Any]]) -> None:
    """tallies: {"id", "tally"} of each roll-up row to write."""
    if tallies:
        await session.execute(update(ReportRollup), tallies)


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
            in_period(start, end),
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
