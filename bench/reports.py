"""How long the supervisors' reports take over a month of 10,000 calls a day.

    python3 -m bench.reports                          # 30 days x 10,000 calls, SQLite file
    python3 -m bench.reports --days 2 --per-day 500   # smaller (--smoke: tiny, for CI)
    python3 -m bench.reports --database-url postgresql+asyncpg://USER@HOST/DB   # a database
                                                      # the script may fill: it is migrated
                                                      # and its calls table filled

It makes the data (a fixed random seed: queues, agents, waits, abandons, surveys, transfers,
repeat callers, unscripted escalations with callers' words), rolls the finished calls up as
the server's passes do (app/reports/rollup.py; --no-rollup leaves them as a database upgraded
from before the roll-ups holds them until its first passes), then runs each report through the
service a supervisor's request calls (app/reports/service.py) a few times and prints the
median and the slowest, with the longest the event loop went without a turn meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert, select

from app.calls.models import Call, Transfer
from app.config import Settings
from app.context import AppContext
from app.db import create_engine
from app.migrate import upgrade
from app.reports import rollup, service
from app.reports.schemas import ExceptionsQuery, ExperienceQuery
from app.users.models import User
from ivr.flow import load_flow

END = datetime(2026, 12, 3, tzinfo=UTC)
QUEUES = [("billing", "billing", 40), ("cards", "card_lost", 30), ("loans", "loans", 20)]
WORDS = [
    "my late husband's account",
    "account of my husband who died",
    "I want a mortgage",
    "mortgage for a second home",
    "my card was charged twice",
    "charged twice on my card",
    "change my address after moving abroad",
    "I moved abroad, new address",
    "pension paid into the wrong account",
    "tax letter about my savings",
    "the app keeps crashing",
    "online banking password reset",
]
AGENTS = 200
CALLERS = 60_000
BATCH = 5000


def make_calls(
    rng: random.Random, day: datetime, per_day: int, agents: list[int]
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(per_day):
        at = day + timedelta(seconds=rng.uniform(8 * 3600, 20 * 3600))
        r = rng.random()
        if r < 0.06:
            queue, intent = "escalations", None
        else:
            queue, intent, _w = rng.choices(QUEUES, weights=[q[2] for q in QUEUES])[0]
        abandoned = rng.random() < 0.06
        waited = min(rng.expovariate(1 / 25), 900.0)
        row: dict[str, Any] = {
            "state": "abandoned" if abandoned else "ended",
            "caller_number": f"+1555{rng.randrange(CALLERS):07d}",
            "language": "en",
            "customer_id": None,
            "caller_known": False,
            "verified": False,
            "verify_failures": 0,
            "intent": intent,
            "queue": queue,
            "escalation_reason": "unscripted" if queue == "escalations" else None,
            "utterance": rng.choice(WORDS) if queue == "escalations" else None,
            "collected": {},
            "vip": False,
            "agent_id": None,
            "rejected_by": [],
            "disposition": None,
            "sentiment": None,
            "csat": None,
            "had_to_repeat": None,
            "created_at": at - timedelta(seconds=40),
            "queued_at": at,
            "first_queued_at": at,
            "waited_s": waited,
            "connected_at": None,
            "first_connected_at": None,
            "hungup_at": at + timedelta(seconds=waited),
            "ended_at": at + timedelta(seconds=waited),
        }
        if not abandoned:
            connected = at + timedelta(seconds=waited)
            ended = connected + timedelta(seconds=rng.uniform(60, 900))
            surveyed = rng.random() < 0.3
            row |= {
                "agent_id": rng.choice(agents),
                "disposition": rng.choice(["resolved", "resolved", "follow_up", "unresolved"]),
                "sentiment": rng.choice(["positive", "neutral", "neutral", "negative"]),
                "csat": rng.randint(1, 5) if surveyed else None,
                "had_to_repeat": (rng.random() < 0.15) if surveyed else None,
                "connected_at": connected,
                "first_connected_at": connected,
                "hungup_at": ended,
                "ended_at": ended,
            }
        rows.append(row)
    return rows


async def fill(url: str, days: int, per_day: int) -> int:
    engine = create_engine(url)
    rng = random.Random(19)
    try:
        async with engine.begin() as conn:
            if await conn.scalar(select(func.count()).select_from(Call)):
                raise SystemExit(f"{url}: the calls table is not empty; give an empty database")
            now = datetime.now(UTC)
            await conn.execute(
                insert(User),
                [
                    {
                        "username": f"bench{n}",
                        "password_hash": "-",
                        "display_name": f"Agent {n}",
                        "role": "agent",
                        "skills": ["billing"],
                        "status": "offline",
                        "status_since": now,
                        "created_at": now,
                        "token_version": 0,
                    }
                    for n in range(AGENTS)
                ],
            )
            agents = list((await conn.scalars(select(User.id))).all())
            start = END - timedelta(days=days)
            made = 0
            for d in range(days):
                rows = make_calls(rng, start + timedelta(days=d), per_day, agents)
                for first in range(0, len(rows), BATCH):
                    await conn.execute(insert(Call), rows[first : first + BATCH])
                made += len(rows)
            # One call in twenty transferred once.
            ids = (await conn.scalars(select(Call.id).where(Call.agent_id.is_not(None)))).all()
            moved = [
                {"call_id": i, "from_agent_id": agents[0], "to_queue": "billing", "at": now}
                for i in ids[::20]
            ]
            for first in range(0, len(moved), BATCH):
                await conn.execute(insert(Transfer), moved[first : first + BATCH])
        return made
    finally:
        await engine.dispose()


async def timed(work: Any, runs: int) -> tuple[list[float], float]:
    """Seconds of each run, and the longest the event loop waited for a turn meanwhile."""
    stall = 0.0
    done = False

    async def ticker() -> None:
        nonlocal stall
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stall = max(stall, now - last - 0.001)
            last = now

    tick = asyncio.create_task(ticker())
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await work()
        times.append(time.perf_counter() - began)
    done = True
    await tick
    return times, stall


def bench_context(url: str) -> AppContext:
    settings = Settings(
        database_url=url,
        secret_key=SecretStr("bench-secret-key-0123456789"),
        ivr_api_key=SecretStr("bench-ivr-key-0123456789"),
    )
    return AppContext.build(settings, load_flow(None))


async def roll_up(url: str) -> None:
    """What the server's roll-up passes do as calls finish, here all at once."""
    ctx = bench_context(url)
    try:
        began = time.perf_counter()
        done = await rollup.roll_up_all(ctx)
        took = time.perf_counter() - began
        print(f"{done} calls rolled up in {took:.1f} s ({done / took:.0f} calls/s)")
    finally:
        await ctx.dispose()


async def measure(url: str, days: int, runs: int) -> None:
    for period_days in sorted({1, 7, days}):
        if period_days <= days:
            print(f"-- a period of {period_days} day(s), the last of the {days}")
            await measure_period(url, END - timedelta(days=period_days), END, runs)
    # A supervisor in New York asks for the month to a quarter to eight in the evening: neither
    # end on a UTC day, one not on an hour.
    start = END - timedelta(days=days) + timedelta(hours=5)
    end = END - timedelta(minutes=15)
    print(f"-- {start.isoformat()} to {end.isoformat()}")
    await measure_period(url, start, end, runs)


async def measure_period(url: str, start: datetime, end: datetime, runs: int) -> None:
    ctx = bench_context(url)
    period = {"from": start.isoformat(), "to": end.isoformat()}
    try:
        for name, work in [
            (
                "experience by queue",
                lambda: service.experience(
                    ctx, query=ExperienceQuery.model_validate({**period, "group_by": "queue"})
                ),
            ),
            (
                "experience by agent",
                lambda: service.experience(
                    ctx, query=ExperienceQuery.model_validate({**period, "group_by": "agent"})
                ),
            ),
            (
                "exceptions",
                lambda: service.exceptions(ctx, query=ExceptionsQuery.model_validate(period)),
            ),
        ]:
            report = await work()
            calls = report.total.calls if hasattr(report, "total") else report.utterances
            times, stall = await timed(work, runs)
            print(
                f"{name:<22} rows {calls:>7}  median {statistics.median(times) * 1000:6.0f} ms"
                f"  slowest {max(times) * 1000:6.0f} ms  longest loop stall {stall * 1000:5.1f} ms"
            )
    finally:
        await ctx.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--database-url", help="an empty database to fill (default: a new SQLite file)"
    )
    parser.add_argument(
        "--no-rollup",
        action="store_true",
        help="leave the calls as a database upgraded from before the roll-ups holds them",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny: 2 days of 200 calls, 1 run")
    args = parser.parse_args()
    if args.smoke:
        args.days, args.per_day, args.runs = 2, 200, 1
    with tempfile.TemporaryDirectory(prefix="tellonce-reports-") as directory:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'reports.db'}"
        upgrade(url)
        began = time.perf_counter()
        made = asyncio.run(fill(url, args.days, args.per_day))
        print(f"{made} calls over {args.days} days made in {time.perf_counter() - began:.0f} s")
        if not args.no_rollup:
            asyncio.run(roll_up(url))
        asyncio.run(measure(url, args.days, args.runs))


if __name__ == "__main__":
    main()
