"""The reports' roll-ups: finished calls added up per hour, and per queue and per agent by hour
and by day (UTC), so that a report over a month reads some thousands of rows, not a row per
call.

A call is rolled up once, some seconds after it finishes, by whichever instance's pass takes it
(`roll_up_forever`, every TELLONCE_REPORT_ROLLUP_S); a survey answered after that is added to its
rows at once (`add_survey`). Nothing else changes a finished call's figures. A report reads the
roll-ups of the whole hours and days of its period, and the other calls as they are: those of
the hours at its edges, and those not rolled up yet (live, or just finished). Calls a database
held before the roll-ups existed are rolled up by the same passes.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable

from app.calls.models import Call
from app.calls.states import FINAL_STATES, CallState
from app.context import AppContext
from app.db import DbSession
from app.reports import repository
from app.reports.repository import RollupKey
from app.reports.tally import CallFacts, Tally
from app.uow import unit_of_work

log = logging.getLogger("tellonce.reports")

# A call about the same thing from the same caller within this long of an earlier one repeats it.
REPEAT_WINDOW = timedelta(days=7)
# How far back a caller's last repeat call is looked for: the longest period a report may cover
# (TELLONCE_REPORT_MAX_DAYS at most), so that "none since the period began" holds for any.
REPEAT_LOOKBACK = timedelta(days=366)
# Calls rolled up in one transaction: on SQLite it holds the server's one connection meanwhile.
BATCH = 200
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


# --- a period's parts ----------------------------------------------------------------------------


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _ceil(t: datetime, floor: datetime, step: timedelta) -> datetime:
    return floor if floor == t else floor + step


def floor_day(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


Span = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Spans:
    """A period [start, end) cut where the roll-ups can answer. `whole` is its whole hours
    (None: it holds none), read from the hourly rows of all calls; `edges` the rest, read call
    by call. Of `whole`, the groups' rows give `days` by day, less their `outside` hours, and
    `hours` by hour: a day with more than 12 of its hours in the period is read as the day less
    the others, so that no more than 12 hours of a day are read hour by hour."""

    edges: tuple[Span, ...]
    whole: Span | None
    hours: tuple[Span, ...] = ()
    days: tuple[Span, ...] = ()
    outside: tuple[Span, ...] = ()


def spans(start: datetime, end: datetime) -> Spans:
    a = _ceil(start, floor_hour(start), HOUR)
    b = floor_hour(end)
    if a >= b:
        return Spans(edges=((start, end),), whole=None)
    edges = tuple(span for span in ((start, a), (b, end)) if span[0] < span[1])
    hours: list[Span] = []
    days: list[Span] = []
    outside: list[Span] = []
    day = floor_day(a)
    while day < b:
        inside = (max(a, day), min(b, day + DAY))
        if inside[1] - inside[0] > DAY / 2:
            if days and days[-1][1] == day:  # the day after the last: one span
                days[-1] = (days[-1][0], day + DAY)
            else:
                days.append((day, day + DAY))
            outside += [s for s in ((day, inside[0]), (inside[1], day + DAY)) if s[0] < s[1]]
        else:
            hours.append(inside)
        day += DAY
    return Spans(
        edges=edges, whole=(a, b), hours=tuple(hours), days=tuple(days), outside=tuple(outside)
    )


def keys_of(first_queued_at: datetime, queue: str | None, agent_id: int | None) -> list[RollupKey]:
    """The roll-up rows a call counts in: every call's of its hour (the report's total and its
    hour-by-hour figures), and its queue's and its agent's (key "": none) of its hour and day."""
    agent = "" if agent_id is None else str(agent_id)
    hour, day = floor_hour(first_queued_at), floor_day(first_queued_at)
    return [
        ("all", "hour", hour, ""),
        ("queue", "hour", hour, queue or ""),
        ("queue", "day", day, queue or ""),
        ("agent", "hour", hour, agent),
        ("agent", "day", day, agent),
    ]


# --- calls read one by one -----------------------------------------------------------------------


def caller_of(customer_id: int | None, number: str) -> str:
    return f"c{customer_id}" if customer_id is not None else f"n{number}"


def history_statements(rows: Sequence[Any], size: int = 500) -> list[Executable]:
    """The queries for the calls of these rows' callers (rows of repository.FACT_COLUMNS) that
    came before them: as far back as a repeat call before one of them can matter."""
    statements = []
    for i in range(0, len(rows), size):
        chunk = rows[i : i + size]
        statements.extend(
            repository.caller_history(
                {r.customer_id for r in chunk if r.customer_id is not None},
                {r.caller_number for r in chunk if r.customer_id is None},
                min(r.first_queued_at for r in chunk) - REPEAT_LOOKBACK - REPEAT_WINDOW,
                max(r.first_queued_at for r in chunk),
            )
        )
    return statements


@dataclass(frozen=True, slots=True)
class _Past:
    """A caller's earlier call, and whether it repeated one before it."""

    at: datetime
    topic: str | None
    queue: str | None
    agent_id: int | None
    repeats: bool


def _pasts(history: Iterable[Any]) -> dict[str, list[_Past]]:
    """Each caller's calls in the order they were handed off, each marked a repeat or not."""
    calls: dict[str, list[Any]] = defaultdict(list)
    for h in history:
        calls[caller_of(h.customer_id, h.caller_number)].append(h)
    out: dict[str, list[_Past]] = {}
    for caller, found in calls.items():
        found.sort(key=lambda h: h.first_queued_at)
        last: dict[str | None, datetime] = {}
        marked = []
        for h in found:
            topic = h.intent or h.queue
            before = last.get(topic)
            repeats = before is not None and h.first_queued_at - before <= REPEAT_WINDOW
            marked.append(_Past(h.first_queued_at, topic, h.queue, h.agent_id, repeats))
            last[topic] = h.first_queued_at
        out[caller] = marked
    return out


def to_facts(rows: Iterable[Any], history: Iterable[Any]) -> list[tuple[Any, CallFacts]]:
    """Each row with its facts. A call repeats an earlier one of the same caller (the customer,
    else the number) about the same thing (the intent, else the queue) first queued within
    REPEAT_WINDOW before it; and its caller's last repeat calls before it (within
    REPEAT_LOOKBACK) tell whether it is that caller's first repeat call of a period."""
    pasts = _pasts(history)
    out = []
    for r in rows:
        past = pasts.get(caller_of(r.customer_id, r.caller_number), [])
        at = r.first_queued_at
        # Newest first, from the last call before this one.
        before = past[: bisect.bisect_left(past, at, key=lambda p: p.at)][::-1]
        topic = r.intent or r.queue
        repeats = False
        for p in before:
            if at - p.at > REPEAT_WINDOW:
                break
            if p.topic == topic:
                repeats = True
                break
        earlier = [p for p in before if p.repeats and at - p.at <= REPEAT_LOOKBACK]
        state = CallState(r.state)
        facts = CallFacts(
            queue=r.queue,
            agent_id=r.agent_id,
            first_queued_at=at,
            final=state in FINAL_STATES,
            abandoned=state == CallState.abandoned,
            first_connected_at=r.first_connected_at,
            ended_at=r.ended_at,
            waited_s=r.waited_s,
            escalation_reason=r.escalation_reason,
            csat=r.csat,
            had_to_repeat=r.had_to_repeat,
            sentiment=r.sentiment,
            transfers=r.transfers,
            asked_again=r.asked_again,
            repeats=repeats,
            prev_repeat_at=next((p.at for p in earlier), None),
            prev_repeat_in_queue_at=next((p.at for p in earlier if p.queue == r.queue), None),
            prev_repeat_of_agent_at=next(
                (p.at for p in earlier if r.agent_id is not None and p.agent_id == r.agent_id),
                None,
            ),
        )
        out.append((r, facts))
    return out


# --- writing the roll-ups ------------------------------------------------------------------------


async def _add(session: DbSession, tallies: dict[RollupKey, Tally]) -> None:
    rows = await repository.locked_rollups(session, list(tallies))
    await repository.set_tallies(
        session,
        [
            {"id": row.id, "tally": _merged(row.tally, tallies[key]).to_json()}
            for key, row in rows.items()
        ],
    )


def _merged(stored: dict[str, Any], more: Tally) -> Tally:
    tally = Tally()
    tally.merge_json(stored)
    tally.merge(more)
    return tally


async def roll_up(session: DbSession, *, limit: int = BATCH) -> int:
    """Roll up at most `limit` finished calls; returns how many were taken."""
    rows = await repository.finished_not_rolled_up(session, limit=limit)
    handed = [r for r in rows if r.first_queued_at is not None]
    history: list[Any] = []
    for stmt in history_statements(handed):
        history.extend(await repository.rows_of(session, stmt))
    tallies: dict[RollupKey, Tally] = defaultdict(Tally)
    marks: dict[int, dict[str, Any]] = {r.id: {"id": r.id} for r in rows}
    for r, facts in to_facts(handed, history):
        marks[r.id].update(
            repeats=facts.repeats,
            prev_repeat_at=facts.prev_repeat_at,
            prev_repeat_in_queue_at=facts.prev_repeat_in_queue_at,
            prev_repeat_of_agent_at=facts.prev_repeat_of_agent_at,
        )
        for key in keys_of(facts.first_queued_at, facts.queue, facts.agent_id):
            tallies[key].add_call(facts)
    if tallies:
        await _add(session, tallies)
    await repository.mark_rolled_up(session, list(marks.values()))
    return len(rows)


async def add_survey(session: DbSession, call: Call) -> None:
    """A survey answered after the call was rolled up: added to its rows (before, the pass that
    rolls the call up reads it with the rest)."""
    if not call.rolled_up or call.first_queued_at is None:
        return
    survey = Tally()
    survey.add_survey(call.csat, call.had_to_repeat)
    await _add(
        session, {k: survey for k in keys_of(call.first_queued_at, call.queue, call.agent_id)}
    )


async def roll_up_all(ctx: AppContext) -> int:
    """Roll up every finished call not rolled up yet, a batch per transaction."""
    done = 0
    while True:
        async with unit_of_work(ctx) as uow:
            taken = await roll_up(uow.session)
        done += taken
        if taken < BATCH:
            return done
        await asyncio.sleep(0)  # let requests in between the batches


async def roll_up_forever(ctx: AppContext) -> None:
    while True:
        try:
            await roll_up_all(ctx)
        except Exception:
            log.exception("rolling up the reports failed")
        await asyncio.sleep(ctx.settings.report_rollup_s)
