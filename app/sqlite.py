"""The embedded default: SQLite through SQLAlchemy's synchronous Session, run on the event loop.

Why: SQLAlchemy's async SQLite driver (aiosqlite) sends each statement to a thread and back, four
hops a statement, and the one SQLite connection stays held while the hops wait their turn. That
was most of the time of every request (docs/ARCHITECTURE.md gives the figures). SQLite itself
answers in microseconds, so here the ORM's own synchronous Session over the standard pysqlite
driver runs each statement in the caller, on the loop, behind the few methods of the async
session API that the repositories use (`DbSession` in app/db.py).

What could block the loop is waiting for a lock: transactions in this process are taken in turn
through an asyncio.Lock (so a second one waits on the loop, never in SQLite or the pool), and a
BEGIN IMMEDIATE refused because another process (`tellonce user create`, a backup) holds the
file is tried again after an asynchronous sleep. Once begun, a transaction holds the write lock
and meets no other wait: in WAL mode readers never block it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, Executable, Result, ScalarResult, make_url
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import IdentityMap, Session
from sqlalchemy.pool import StaticPool

from app.db import configure_sqlite

M = TypeVar("M")

# How long a transaction waits for another process's lock before it fails, as SQLite would.
LOCK_TIMEOUT_S = 30.0
_FIRST_BACKOFF_S = 0.001
_MAX_BACKOFF_S = 0.05


class LoopDatabase:
    """An SQLite file (or memory) whose sessions run on the event loop, one transaction at a
    time."""

    def __init__(self, url: str) -> None:
        sync_url = make_url(url).set(drivername="sqlite")
        memory = sync_url.database in (None, "", ":memory:")
        pool: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
        if not memory:
            pool |= {"pool_size": 1, "max_overflow": 0}
        self.engine: Engine = create_sync_engine(
            sync_url, connect_args={"check_same_thread": False}, **pool
        )
        # Never wait inside SQLite on the loop: a busy BEGIN is retried asynchronously.
        configure_sqlite(self.engine, busy_timeout_ms=0)
        self._turn = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[LoopSession]:
        session = LoopSession(self)
        try:
            yield session
        finally:
            await session.close()

    async def dispose(self) -> None:
        self.engine.dispose()

    async def take_turn(self) -> None:
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            raise RuntimeError("this task's transaction is open: a second one would wait on it")
        await self._turn.acquire()
        self._holder = task

    def end_turn(self) -> None:
        self._holder = None
        self._turn.release()


def _is_busy(error: OperationalError) -> bool:
    code = getattr(error.orig, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error.orig).lower()


class LoopSession:
    """The async session API over a synchronous Session: each method runs it at once."""

    def __init__(self, database: LoopDatabase) -> None:
        self._database = database
        self.sync_session = Session(database.engine, expire_on_commit=False)
        self._has_turn = False

    async def _begin(self) -> None:
        """Take this process's turn, then BEGIN IMMEDIATE (the engine's begin event)."""
        if self._has_turn:
            return
        await self._database.take_turn()
        self._has_turn = True
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        backoff = _FIRST_BACKOFF_S
        while True:
            try:
                self.sync_session.connection()
                return
            except OperationalError as error:
                self.sync_session.rollback()
                if not _is_busy(error) or time.monotonic() >= deadline:
                    self._end()
                    raise
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def _end(self) -> None:
        if self._has_turn:
            self._has_turn = False
            self._database.end_turn()

    async def execute(self, statement: Executable, params: Any = None) -> Result[*tuple[Any, ...]]:
        await self._begin()
        return self.sync_session.execute(statement, params)

    async def scalar(self, statement: Executable, params: Any = None) -> Any:
        await self._begin()
        return self.sync_session.scalar(statement, params)

    async def scalars(self, statement: Executable, params: Any = None) -> ScalarResult[Any]:
        await self._begin()
        return self.sync_session.scalars(statement, params)

    async def get(
        self,
        entity: type[M],
        ident: Any,
        *,
        populate_existing: bool = False,
        with_for_update: bool | None = None,
    ) -> M | None:
        await self._begin()
        return self.sync_session.get(
            entity, ident, populate_existing=populate_existing, with_for_update=with_for_update
        )

    @property
    def identity_map(self) -> IdentityMap:
        return self.sync_session.identity_map

    def add(self, instance: object) -> None:
        self.sync_session.add(instance)

    def add_all(self, instances: Iterable[object]) -> None:
        self.sync_session.add_all(instances)

    async def flush(self) -> None:
        await self._begin()
        self.sync_session.flush()

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        await self._begin()
        with self.sync_session.begin_nested():
            yield

    def in_transaction(self) -> bool:
        return self.sync_session.in_transaction()

    def get_bind(self) -> Engine:
        return self._database.engine

    async def commit(self) -> None:
        session = self.sync_session
        if self._has_turn or session.new or session.dirty or session.deleted:
            await self._begin()
            try:
                session.commit()
            except BaseException:
                # The connection goes back to the pool before the next transaction's turn.
                session.rollback()
                raise
            finally:
                self._end()

    async def rollback(self) -> None:
        try:
            self.sync_session.rollback()
        finally:
            self._end()

    async def close(self) -> None:
        try:
            self.sync_session.close()
        finally:
            self._end()
