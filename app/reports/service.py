"""The reports' rules: the period's bounds, the figures from the rows, the groups of words.

The reads run where they hold nothing the calls need: on SQLite, in a thread on a connection of
their own (in WAL mode a reader neither waits for the server's writes nor delays them, while the
server's one connection and its event loop stay free); on PostgreSQL, on a session of their own.
The arithmetic over a month of rows runs in a thread too, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.audit import service as audit
from app.context import AppContext
from app.db import DbSession, utcnow
from app.errors import Conflict, Invalid, NotFound
from app.reports import draft, repository, rollup, similarity
from app.reports.models import ExceptionMark
from app.reports.schemas import (
    DraftQuery,
    ExceptionGroup,
    ExceptionsOut,
    ExceptionsQuery,
    ExperienceOut,
    ExperienceQuery,
    Figures,
    Group,
    GroupBy,
    HourFigures,
    MarkCreate,
    MarkRead,
    Period,
)
from app.reports.tally import CallFacts, Tally, percentile
from app.users.models import User

T = TypeVar("T")

# The exceptions report groups at most this many utterances, the period's newest: grouping
# costs more than linear time when many share terms.
MAX_UTTERANCES = 5000
EXAMPLES = 3
MAX_CALL_IDS = 200


def check_period(ctx: AppContext, period: Period) -> None:
    days = ctx.settings.report_max_days
    if period.to - period.from_ > timedelta(days=days):
        raise Invalid(
            f"the period is longer than {days} days (TELLONCE_REPORT_MAX_DAYS)",
            loc=("query", "to"),
        )


async def _read(ctx: AppContext, work: Callable[[Session], T]) -> T:
    path = ctx.settings.sqlite_path()
    if path is not None:
        return await asyncio.to_thread(_read_file, path, work)
    async with ctx.reading() as session:
        if isinstance(session, AsyncSession):
            return await session.run_sync(work)
        # An SQLite database in memory: only the server's own connection sees it.
        sync_session: Session = session.sync_session  # type: ignore[attr-defined]
        await session.execute(repository.BEGIN)
        return work(sync_session)


def _read_file(path: Path, work: Callable[[Session], T]) -> T:
    """work(session) on a read-only connection of its own to the SQLite file, in one read
    transaction (one snapshot for every query)."""
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # The driver's own transaction handling off, so that BEGIN below starts a plain
        # (deferred) read transaction: SQLAlchemy's documented recipe for pysqlite.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA query_only=ON")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    try:
        with Session(engine) as session:
            return work(session)
    finally:
        engine.dispose()


# --- the experience report --------------------------------------------------------------------


@dataclass
class _ExperienceRows:
    """What the database holds for one experience report (see app/reports/rollup.py)."""

    # The calls read one by one, with their facts.
    calls: list[CallFacts]
    # (start, key, tally as JSON text) of the hourly roll-ups of all calls; and (sign, (start,
    # key, tally)) of the groups' roll-ups: to add (1), or to take away (-1, a day's hours
    # outside).
    hour_rows: Sequence[Any]
    group_rows: Sequence[tuple[int, Any]]
    # Of the rolled-up repeat calls, those that are their caller's first of the period: per
    # group key and in all (repository.rolled_up_repeat_callers).
    rolled_callers: dict[Any, int]
    rolled_callers_total: int
    names: dict[int, str]


def _experience_rows(
    session: Session, *, by: str, start: datetime, end: datetime
) -> _ExperienceRows:
    parts = rollup.spans(start, end)
    raw = repository.raw_calls(session, edges=parts.edges, whole=parts.whole)
    history = [row for stmt in rollup.history_statements(raw) for row in session.execute(stmt)]
    calls = [facts for _row, facts in rollup.to_facts(raw, history)]
    hour_rows: Sequence[Any] = []
    group_rows: list[tuple[int, Any]] = []
    rolled: tuple[dict[Any, int], int] = ({}, 0)
    if parts.whole is not None:
        a, b = parts.whole
        hour_rows = repository.rollups(session, dimension="all", grain="hour", start=a, end=b)
        for grain, sign, found in (
            ("hour", 1, parts.hours),
            ("day", 1, parts.days),
            ("hour", -1, parts.outside),
        ):
            for s1, s2 in found:
                rows = repository.rollups(session, dimension=by, grain=grain, start=s1, end=s2)
                group_rows += [(sign, row) for row in rows]
        rolled = repository.rolled_up_repeat_callers(session, by=by, start=a, end=b, since=start)
    ids: set[int] = set()
    if by == GroupBy.agent:
        ids = {c.agent_id for c in calls if c.agent_id is not None}
        ids |= {int(row.key) for _sign, row in group_rows if row.key}
    return _ExperienceRows(
        calls=calls,
        hour_rows=hour_rows,
        group_rows=group_rows,
        rolled_callers=rolled[0],
        rolled_callers_total=rolled[1],
        names=repository.agent_names(session, sorted(ids)),
    )


def _experience_out(query: ExperienceQuery, service_level_s: float, rows: _ExperienceRows) -> Any:
    by_agent = query.group_by == GroupBy.agent
    groups: dict[Any, Tally] = defaultdict(Tally)
    hours: dict[datetime, Tally] = defaultdict(Tally)
    for start, _key, stored in rows.hour_rows:
        hours[start].merge_json(json.loads(stored))
    for sign, (_start, key, stored) in rows.group_rows:
        # A roll-up's key is text: an agent's id, or "" for none.
        group = groups[(int(key) if key else None) if by_agent else key]
        group.merge_json(json.loads(stored), sign=sign)
    for call in rows.calls:
        hours[rollup.floor_hour(call.first_queued_at)].add_call(call)
        groups[call.agent_id if by_agent else call.queue or ""].add_call(call)
    total = Tally()
    for tally in hours.values():
        total.merge(tally)

    # A period's repeat callers: its repeat calls that are their caller's first of it (in the
    # group), rolled up or read one by one.
    callers = Counter(rows.rolled_callers)
    callers_total = rows.rolled_callers_total
    for call in rows.calls:
        key = call.agent_id if by_agent else call.queue
        prev = call.prev_repeat_of_agent_at if by_agent else call.prev_repeat_in_queue_at
        callers[key] += call.first_repeat_since(query.from_, prev)
        callers_total += call.first_repeat_since(query.from_, call.prev_repeat_at)

    def figures(tally: Tally, repeat_callers: int) -> dict[str, Any]:
        return tally.figures(service_level_s=service_level_s, repeat_callers=repeat_callers)

    out = []
    # Calls no agent answered have no agent: in the total, in no agent's group.
    # A group whose calls were all in hours taken away (a day's outside the period) has none.
    keys = [k for k, g in groups.items() if g["calls"] > 0 and (k is not None or not by_agent)]
    for key in keys:
        name = rows.names.get(key) if by_agent else None
        shown = key if key not in (None, "") else "(none)"
        found = figures(groups[key], callers[key or None])
        out.append(Group(key=shown, name=name, **found))
    out.sort(key=lambda g: (-g.calls, str(g.key)))
    by_hour = []
    hour = rollup.floor_hour(query.from_)
    while hour < query.to:
        tally = hours.get(hour) or Tally()
        by_hour.append(
            HourFigures(
                at=hour,
                calls=tally["calls"],
                answered=tally["answered"],
                abandoned=tally["abandoned"],
                wait_p50_s=percentile(tally.waits, 0.5),
                wait_p90_s=percentile(tally.waits, 0.9),
            )
        )
        hour += rollup.HOUR
    return ExperienceOut(
        from_=query.from_,
        to=query.to,
        group_by=query.group_by,
        service_level_s=service_level_s,
        total=Figures(**figures(total, callers_total)),
        groups=out,
        by_hour=by_hour,
    )


async def experience(ctx: AppContext, *, query: ExperienceQuery) -> ExperienceOut:
    check_period(ctx, query)
    service_level_s = ctx.settings.service_level_s

    def read(session: Session) -> _ExperienceRows:
        return _experience_rows(session, by=query.group_by, start=query.from_, end=query.to)

    rows = await _read(ctx, read)
    result: ExperienceOut = await asyncio.to_thread(_experience_out, query, service_level_s, rows)
    return result


# --- the exceptions report --------------------------------------------------------------------


def _outcome(state: str, disposition: str | None) -> str:
    if disposition is not None:
        return disposition
    return "abandoned" if state == "abandoned" else "open"


def terms_key(terms: Sequence[str]) -> str:
    """A group's identity: its key terms in any order."""
    return " ".join(sorted(set(terms)))


def _exceptions_out(
    query: ExceptionsQuery, rows: Sequence[Any], marked: AbstractSet[str] = frozenset()
) -> ExceptionsOut:
    utterances = [row.utterance for row in rows]
    groups = []
    for cluster in similarity.group(utterances):
        members = [rows[i] for i in cluster.members]
        examples = list(dict.fromkeys(row.utterance for row in members))[:EXAMPLES]
        label = cluster.label()
        groups.append(
            ExceptionGroup(
                label=" ".join(label),
                terms=label,
                count=len(members),
                examples=examples,
                call_ids=sorted(row.id for row in members)[:MAX_CALL_IDS],
                queues=dict(Counter(row.queue or "(none)" for row in members).most_common()),
                resolutions=dict(
                    Counter(_outcome(row.state, row.disposition) for row in members).most_common()
                ),
                marked=terms_key(label) in marked,
            )
        )
    return ExceptionsOut(from_=query.from_, to=query.to, utterances=len(rows), groups=groups)


async def exceptions(ctx: AppContext, *, query: ExceptionsQuery) -> ExceptionsOut:
    check_period(ctx, query)

    def read(session: Session) -> tuple[Sequence[Any], set[str]]:
        rows = repository.exception_utterances(
            session, start=query.from_, end=query.to, limit=MAX_UTTERANCES
        )
        return rows, repository.marked_keys(session)

    rows, marked = await _read(ctx, read)
    return await asyncio.to_thread(_exceptions_out, query, rows, marked)


async def draft_intent(ctx: AppContext, *, query: DraftQuery) -> tuple[str, str]:
    """(file name, YAML) of the draft intent of the period's group with this label, checked
    against the server's flow (TELLONCE_FLOW)."""
    report = await exceptions(ctx, query=query)
    group = next((g for g in report.groups if g.label == query.label), None)
    if group is None:
        raise NotFound("no group of the exceptions report of this period has that label")
    built = await asyncio.to_thread(draft.build, ctx.flow, terms=group.terms, queues=group.queues)
    if not built.keywords:
        raise Conflict(
            "none of the group's key terms can be a keyword: each would change what the "
            "flow's own examples match"
        )
    text = draft.render(
        ctx.flow,
        built,
        count=group.count,
        examples=group.examples,
        start=query.from_,
        end=query.to,
    )
    return built.name, text


def mark_read(mark: ExceptionMark) -> MarkRead:
    return MarkRead(
        id=mark.id,
        terms=mark.terms_key.split(" "),
        note=mark.note,
        marked_by_id=mark.marked_by_id,
        marked_at=mark.marked_at,
    )


async def mark(session: DbSession, *, data: MarkCreate, by: User) -> MarkRead:
    """Mark a group "add to the phone tree"; a group marked already is a conflict."""
    key = terms_key(data.terms)
    if await repository.mark_by_key(session, key) is not None:
        raise Conflict("this group is marked already")
    found = ExceptionMark(terms_key=key, marked_by_id=by.id, marked_at=utcnow(), note=data.note)
    repository.add_mark(session, found)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # a concurrent mark of the same group
        raise Conflict("this group is marked already") from exc
    audit.record(
        session,
        by=by,
        action="exceptions.marked",
        object_type="exception_mark",
        object_id=found.id,
        details={"terms": key.split(" "), "note": data.note},
    )
    return mark_read(found)
