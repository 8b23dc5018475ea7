"""What one statement costs on the embedded default, by the road it takes.

    python3 -m bench.statements            # 3000 statements a road
    python3 -m bench.statements --smoke    # a few (CI)

On a fresh, migrated SQLite file, the same query (an ORM entity by an indexed column) runs in
transactions of 10 statements:
- through SQLAlchemy's AsyncSession on aiosqlite, which sends each statement to a thread;
- through app/sqlite.py's LoopSession, SQLAlchemy's synchronous Session on the event loop;
and, on the LoopSession, the same query built anew for every run instead of once at import.
It prints the mean time per statement of each (BEGIN and COMMIT included, shared by 10).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.calls.models import Call
from app.db import DbSession, create_engine
from app.migrate import upgrade
from app.sqlite import LoopDatabase

PER_TRANSACTION = 10
_BY_CALLER = select(Call).where(Call.caller_number == bindparam("number"))


def built_once(n: int) -> tuple[Select[Call], dict[str, str]]:
    return _BY_CALLER, {"number": f"+1555{n:07d}"}


def built_each_time(n: int) -> tuple[Select[Call], dict[str, str]]:
    return select(Call).where(Call.caller_number == f"+1555{n:07d}"), {}


async def per_statement_us(
    session_of: Callable[[], object],
    build: Callable[[int], tuple[Select[Call], dict[str, str]]],
    statements: int,
) -> float:
    began = time.perf_counter()
    for first in range(0, statements, PER_TRANSACTION):
        async with session_of() as session:  # type: ignore[attr-defined]
            db: DbSession = session
            for n in range(first, first + PER_TRANSACTION):
                query, params = build(n)
                await db.scalar(query, params)
            await db.commit()
    return (time.perf_counter() - began) / statements * 1e6


async def run(path: Path, statements: int) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    loop_db = LoopDatabase(url)
    try:
        threaded = async_sessionmaker(engine, expire_on_commit=False)
        roads: list[
            tuple[str, Callable[[], object], Callable[[int], tuple[Select[Call], dict[str, str]]]]
        ] = [
            ("AsyncSession on aiosqlite (a thread)", threaded, built_once),
            ("LoopSession on the event loop", loop_db.session, built_once),
            ("LoopSession, statement built each time", loop_db.session, built_each_time),
        ]
        await per_statement_us(loop_db.session, built_once, 200)  # warm caches
        await per_statement_us(threaded, built_once, 200)
        return {name: await per_statement_us(s, b, statements) for name, s, b in roads}
    finally:
        await engine.dispose()
        await loop_db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=3000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.statements = 100
    workdir = Path(tempfile.mkdtemp(prefix="tellonce-statements-"))
    try:
        path = workdir / "tellonce.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        result = asyncio.run(run(path, args.statements))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"one statement, mean of {args.statements}, {PER_TRANSACTION} a transaction:")
    for name, us in result.items():
        print(f"  {name:<42} {us:8.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
