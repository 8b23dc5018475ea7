"""The reports' queries on a real SQLite file: the percentiles and repeat counts the database
picks are those the nearest-rank rule gives over the same values in Python."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.calls.models import Call
from app.calls.states import CallState
from app.context import AppContext
from app.reports import repository
from app.reports.service import REPEAT_WINDOW, percentile

DAY = datetime(2026, 11, 10, tzinfo=UTC)


def _call(rng: random.Random, n: int, queue: str) -> Call:
    at = DAY + timedelta(seconds=rng.uniform(0, 20 * 3600))
    waited = round(rng.uniform(0, 300), 3)
    answered = n % 7 != 0
    connected = at + timedelta(seconds=waited) if answered else None
    # Some wraps recorded a little before the answer (clocks): handle times clamp at 0.
    handle = rng.choice([-2.0, rng.uniform(0, 900)])
    ended = connected + timedelta(seconds=handle) if connected else at + timedelta(seconds=waited)
    return Call(
        state=CallState.ended if answered else CallState.abandoned,
        caller_number=f"+1555000{n % 9:04d}",
        queue=queue,
        intent=queue,
        collected={},
        rejected_by=[],
        first_queued_at=at,
        queued_at=at,
        waited_s=waited,
        first_connected_at=connected,
        connected_at=connected,
        ended_at=ended,
    )


async def test_the_databases_picks_are_the_nearest_rank_percentiles(ctx: AppContext) -> None:
    rng = random.Random(7)
    calls = [_call(rng, n, rng.choice(["billing", "cards", "loans"])) for n in range(150)]
    async with ctx.transaction() as session:
        session.add_all(calls)
    path = ctx.settings.sqlite_path()
    assert path is not None
    engine = create_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as session:
            picks = repository.percentiles(
                session, by="queue", start=DAY, end=DAY + timedelta(days=1)
            )
            repeats = repository.repeats(
                session,
                by="queue",
                start=DAY,
                end=DAY + timedelta(days=1),
                window_s=REPEAT_WINDOW.total_seconds(),
            )
    finally:
        engine.dispose()

    def values(kind: str, queue: str | None) -> list[float]:
        chosen = [c for c in calls if queue is None or c.queue == queue]
        if kind == "abandon":
            return [c.waited_s for c in chosen if c.state == CallState.abandoned]
        answered = [c for c in chosen if c.first_connected_at is not None]
        if kind == "wait":
            return [c.waited_s for c in answered]
        return [
            max(0.0, (c.ended_at - c.first_connected_at).total_seconds())  # type: ignore[operator]
            for c in answered
        ]

    expected = {
        (whole, queue, kind, name): percentile(values(kind, queue), p)
        for whole, queues in ((0, ["billing", "cards", "loans"]), (1, [None]))
        for queue in queues
        for kind in ("wait", "abandon", "handle")
        for name, p in (("p50", 0.5), ("p90", 0.9))
    }
    got = {(w, q, k, n): round(v, 1) for w, q, k, n, v in picks}
    # One row per pick: never a row per call.
    assert len(picks) == len(expected)
    assert got == expected

    # Nine numbers over 150 calls in one day, each about its queue: the repeats by hand.
    seen: dict[tuple[str, str | None], datetime] = {}
    by_queue: dict[str | None, list[str]] = {}
    for c in sorted(calls, key=lambda c: c.first_queued_at):  # type: ignore[arg-type,return-value]
        if (c.caller_number, c.queue) in seen:
            by_queue.setdefault(c.queue, []).append(c.caller_number)
        seen[(c.caller_number, c.queue)] = c.first_queued_at  # type: ignore[assignment]
    counted = {(w, k): (n, callers) for w, k, n, callers in repeats}
    for queue, numbers in by_queue.items():
        assert counted[(0, queue)] == (len(numbers), len(set(numbers)))
    everyone = [n for numbers in by_queue.values() for n in numbers]
    assert counted[(1, None)] == (len(everyone), len({(n) for n in everyone}))
