"""SQLite on the event loop: a driver-level asyncio connection with no thread.

SQLAlchemy's aiosqlite dialect wraps a driver connection with an async API. aiosqlite gives it
one by sending every call to a thread of its own and back: four hops per statement (cursor,
execute, fetch, close), some 0.1 ms of CPU each on both sides, and a wait for the event loop's
next turn after each, while SQLite itself answers our statements in microseconds. Holding the
database for that long is what limited the embedded default's throughput.

This module gives the dialect (through create_async_engine's documented `async_creator`) a
connection with the same async API that runs sqlite3 directly, in the caller, on the loop. What
could block the loop is waiting for another process's lock: the connection's busy timeout is 0,
and a statement refused with SQLITE_BUSY (which then has had no effect) is retried after an
asynchronous sleep, so the loop keeps serving while `tellonce user create` or a migration holds
the database, up to a deadline. In this process one pooled connection serialises transactions,
so it never waits on itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.engine import URL

log = logging.getLogger("tellonce.sqlite")

# How long a statement waits for another process's lock before it fails as SQLite would.
LOCK_TIMEOUT_S = 30.0
_FIRST_BACKOFF_S = 0.001
_MAX_BACKOFF_S = 0.05
# A WAL this long (8 MiB of 4 KiB pages) is made to restart at the next checkpoint: its file then
# stays at about the size it reaches in a checkpoint's interval (at most app.db.WAL_SIZE_LIMIT).
RESTART_FRAMES = 2048


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    message = str(error).lower()
    return "locked" in message or "busy" in message


async def _patiently(call: Callable[[], Any], timeout_s: float) -> Any:
    """call(), retried after an asynchronous sleep while another process holds the lock."""
    try:
        return call()
    except sqlite3.OperationalError as error:
        if not _is_busy(error):
            raise
    deadline = time.monotonic() + timeout_s
    backoff = _FIRST_BACKOFF_S
    while True:
        await asyncio.sleep(backoff)
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() >= deadline:
                raise
        backoff = min(backoff * 2, _MAX_BACKOFF_S)


class LoopCursor:
    """aiosqlite's cursor API over a sqlite3 cursor, run in the caller."""

    __slots__ = ("_cursor", "_timeout_s")

    def __init__(self, cursor: sqlite3.Cursor, timeout_s: float) -> None:
        self._cursor = cursor
        self._timeout_s = timeout_s

    async def __aenter__(self) -> LoopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> LoopCursor:
        await _patiently(lambda: self._cursor.execute(sql, parameters), self._timeout_s)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> LoopCursor:
        rows = list(parameters)
        await _patiently(lambda: self._cursor.executemany(sql, rows), self._timeout_s)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None


class _InlineQueue:
    """Stands in for aiosqlite's request queue, used by SQLAlchemy's isolation-level setter."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(error)


class LoopConnection:
    """aiosqlite's connection API over a sqlite3 connection, with no thread."""

    def __init__(self, conn: sqlite3.Connection, timeout_s: float) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._timeout_s = timeout_s
        self._tx = _InlineQueue()

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("Connection closed")
        return self._conn

    @property
    def sqlite3_connection(self) -> sqlite3.Connection:
        """The connection itself, for app/sql.py: inside a transaction that began IMMEDIATE
        this process holds the write lock, so no statement there can meet SQLITE_BUSY."""
        return self._open()

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    def cursor(self) -> LoopCursor:
        # SQLAlchemy enters it (`await cursor.__aenter__()`) before use, as with aiosqlite.
        return LoopCursor(self._open().cursor(), self._timeout_s)

    async def begin_immediate(self) -> None:
        """BEGIN IMMEDIATE: the write lock from the start, waited for asynchronously."""
        conn = self._open()
        await _patiently(lambda: conn.execute("BEGIN IMMEDIATE"), self._timeout_s)

    async def commit(self) -> None:
        conn = self._open()
        await _patiently(conn.commit, self._timeout_s)

    async def rollback(self) -> None:
        self._open().rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open().create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def stop(self) -> None:
        """SQLAlchemy's forced close (garbage collection, cancelled checkout)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


def creator(path: str, *, timeout_s: float = LOCK_TIMEOUT_S) -> Callable[[], Awaitable[Any]]:
    """An `async_creator` for create_async_engine that opens `path` on the loop."""

    async def connect() -> LoopConnection:
        # check_same_thread: SQLAlchemy may close a connection it collects from another thread;
        # sqlite3 itself is built thread-safe, and every statement here runs on the loop.
        conn = await _patiently(
            lambda: sqlite3.connect(
                path,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
                detect_types=0,
            ),
            timeout_s,
        )
        return LoopConnection(conn, timeout_s)

    return connect


def database_path(url: URL) -> str:
    """The file (or ':memory:') that a sqlite URL names, as sqlite3.connect takes it."""
    database: str | None = url.database
    if not database:
        return ":memory:"
    return database


class Checkpointer:
    """WAL checkpoints in a thread of their own, so that no commit on the loop runs one.

    SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1000 pages: it
    copies the pages into the database and syncs both files, some 15 ms here, with the event
    loop stopped (a screen pop's p99 was those 15 ms). The server's connection turns it off
    (`wal_autocheckpoint=0`) and this runs a PASSIVE checkpoint every `interval_s` on a second
    connection, in a thread: sqlite3 lets the GIL go while SQLite works, a passive checkpoint
    never blocks the writer, and it copies each page once, however often it was rewritten since
    the last one. Commits stay as durable as before (synchronous=NORMAL: the WAL is synced at
    each checkpoint).

    A checkpoint does not make the WAL start again from its beginning: the next write
    transaction does, if it begins with every frame of the WAL copied. Under steady traffic a
    commit lands during most checkpoints, and the WAL grows meanwhile, each commit extending
    the file: 175 MB after 1000 back-to-back lifecycles, where it never restarted, and 16 to 22
    MB at 50 handoffs a second, where it restarted every few seconds. A commit that extends the
    file costs more than one that writes over it (75 against 53 us per handoff's commit). So
    once the WAL holds `restart_frames`, the checkpoint copies what came in meanwhile while
    `hold` keeps the server's transactions out (its one connection: they wait in the pool's
    queue while the loop serves the rest), 2.6 to 3.9 ms; the next commit then writes from
    the WAL's start.
    """

    def __init__(
        self,
        path: str,
        *,
        interval_s: float = 1.0,
        hold: Callable[[], AbstractAsyncContextManager[object]] | None = None,
        restart_frames: int = RESTART_FRAMES,
    ) -> None:
        self.path = path
        self.interval_s = interval_s
        self.restart_frames = restart_frames
        self._hold = hold
        # Checkpoints that held the server's transactions back, so that the WAL could restart.
        self.held = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="tellonce-wal-checkpoint")

    async def stop(self) -> None:
        """Waits for a checkpoint under way (its thread cannot be cancelled), then closes."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
        self.close()

    def close(self) -> None:
        """Close the checkpoint's connection (none may be under way)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            try:
                await self.run_once()
            except sqlite3.Error:
                log.exception("WAL checkpoint failed; trying again in %s s", self.interval_s)

    async def run_once(self) -> tuple[int, int, int]:
        """A passive checkpoint; then, if it left a long WAL behind, one more with the server's
        transactions held, so that the next commit restarts the WAL (see the class)."""
        busy, frames, done = await asyncio.to_thread(self.checkpoint)
        # `frames` counts the WAL as this checkpoint began: commits may have added more since.
        if busy or frames < self.restart_frames or self._hold is None:
            return busy, frames, done
        async with self._hold():
            self.held += 1
            return await asyncio.to_thread(self.checkpoint)

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint: (busy, frames in the WAL, frames checkpointed)."""
        if self._conn is None:
            self._conn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
            # Should another process hold the database, wait in this thread, not on the loop.
            self._conn.execute(f"PRAGMA busy_timeout={int(LOCK_TIMEOUT_S * 1000)}")
        busy, frames, done = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(done)
