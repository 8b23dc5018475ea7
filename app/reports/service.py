"""The reports' rules: the period's bounds, the figures from the rows, the groups of words.

The reads run where they hold nothing the calls need: on SQLite, in a thread on a connection of
their own (in WAL mode a reader neither waits for the server's writes nor delays them, while the
server's one connection and its event loop stay free); on PostgreSQL, on a session of their own.
The arithmetic over a month of rows runs in a thread too, off the event loop.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
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
from app.reports import draft, repository, similarity
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
    MarkCreate,
    MarkRead,
    Period,
)
from app.users.models import User

T = TypeVar("T")

# A call about the same thing from the same caller within this long of the last is a repeat.
REPEAT_WINDOW = timedelta(days=7)
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


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile: the smallest value that at least p of the values do not
    exceed (of 1..10, the median is 5 and the 90th percentile 9). None of no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 1)


def _per_100(count: int, calls: int) -> float | None:
    return round(100 * count / calls, 2) if calls else None


def _rate(count: int, calls: int) -> float | None:
    return round(count / calls, 4) if calls else None


@dataclass
class _Tally:
    sums: Counter[str] = field(default_factory=Counter)
    waits: list[float] = field(default_factory=list)
    handles: list[float] = field(default_factory=list)
    abandons: list[float] = field(default_factory=list)
    repeat_calls: int = 0
    repeat_callers: set[str] = field(default_factory=set)

    def figures(self) -> dict[str, Any]:
        s = self.sums
        calls = s["calls"]
        return {
            "calls": calls,
            "answered": s["answered"],
            "abandoned": s["abandoned"],
            "abandon_rate": _rate(s["abandoned"], calls),
            "abandon_p50_s": percentile(self.abandons, 0.5),
            # Of the calls answered or abandoned: a call still waiting has not had its chance.
            "service_level": _rate(s["in_service_level"], s["answered"] + s["abandoned"]),
            "wait_p50_s": percentile(self.waits, 0.5),
            "wait_p90_s": percentile(self.waits, 0.9),
            "handle_p50_s": percentile(self.handles, 0.5),
            "transfers": s["transfers"],
            "transfers_per_100": _per_100(s["transfers"], calls),
            "escalations": s["escalations"],
            "escalations_per_100": _per_100(s["escalations"], calls),
            "csat_mean": round(s["csat_sum"] / s["csat_count"], 2) if s["csat_count"] else None,
            "csat_count": s["csat_count"],
            "csat_distribution": {str(k): s[f"csat_{k}"] for k in range(1, 6)},
            "had_to_repeat": s["had_to_repeat"],
            "had_to_repeat_per_100": _per_100(s["had_to_repeat"], calls),
            "asked_again": s["asked_again"],
            "asked_again_per_100": _per_100(s["asked_again"], calls),
            "repeat_calls": self.repeat_calls,
            "repeat_callers": len(self.repeat_callers),
            "sentiment": {m: s[f"sentiment_{m}"] for m in ("positive", "neutral", "negative")},
        }


@dataclass
class _ExperienceRows:
    counts: Sequence[Any]
    durations: Sequence[Any]
    repeats: Sequence[Any]
    names: dict[int, str]


def _experience_rows(
    session: Session, *, by: str, start: datetime, end: datetime, service_level_s: float
) -> _ExperienceRows:
    counts = repository.counts(
        session, by=by, start=start, end=end, service_level_s=service_level_s
    )
    ids = [row["key"] for row in counts if row["key"] is not None] if by == GroupBy.agent else []
    return _ExperienceRows(
        counts=counts,
        durations=repository.durations(session, by=by, start=start, end=end),
        repeats=repository.repeats(
            session, by=by, start=start, end=end, window_s=REPEAT_WINDOW.total_seconds()
        ),
        names=repository.agent_names(session, ids),
    )


def _tally(rows: _ExperienceRows) -> tuple[_Tally, dict[Any, _Tally]]:
    total = _Tally()
    groups: dict[Any, _Tally] = defaultdict(_Tally)
    for row in rows.counts:
        values = {name: value for name, value in row.items() if name != "key"}
        groups[row["key"]].sums.update(values)
        total.sums.update(values)
    for key, answered, abandoned, waited_s, handle_s in rows.durations:
        for tally in (total, groups[key]):
            if answered:
                tally.waits.append(waited_s)
                if handle_s is not None:
                    tally.handles.append(max(0.0, handle_s))
            elif abandoned:
                tally.abandons.append(waited_s)
    for key, caller in rows.repeats:
        for tally in (total, groups[key]):
            tally.repeat_calls += 1
            tally.repeat_callers.add(caller)
    return total, groups


def _experience_out(query: ExperienceQuery, service_level_s: float, rows: _ExperienceRows) -> Any:
    total, groups = _tally(rows)
    out = []
    # Calls no agent answered have no agent: in the total, in no agent's group.
    keys = [k for k in groups if k is not None] if query.group_by == GroupBy.agent else groups
    for key in keys:
        name = rows.names.get(key) if query.group_by == GroupBy.agent else None
        shown = key if key is not None else "(none)"
        out.append(Group(key=shown, name=name, **groups[key].figures()))
    out.sort(key=lambda g: (-g.calls, str(g.key)))
    return ExperienceOut(
        from_=query.from_,
        to=query.to,
        group_by=query.group_by,
        service_level_s=service_level_s,
        total=Figures(**total.figures()),
        groups=out,
    )


async def experience(ctx: AppContext, *, query: ExperienceQuery) -> ExperienceOut:
    check_period(ctx, query)
    service_level_s = ctx.settings.service_level_s

    def read(session: Session) -> _ExperienceRows:
        return _experience_rows(
            session,
            by=query.group_by,
            start=query.from_,
            end=query.to,
            service_level_s=service_level_s,
        )

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
