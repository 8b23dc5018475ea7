"""Database engine, sessions and the declarative base with a naming convention."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, DateTime, MetaData, event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_

from app import sql, sqlite_loop

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def utcnow() -> datetime:
    return datetime.now(UTC)


# The most a WAL file keeps of its size when it restarts after a checkpoint (SQLite's default
# keeps it at its largest). Large enough for what steady traffic writes between two restarts
# (sqlite_loop.Checkpointer), so that commits write over the old WAL instead of extending it.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def create_engine(
    url: str, *, pool_size: int = 2, checkpoint_elsewhere: bool = False
) -> AsyncEngine:
    """checkpoint_elsewhere: on an SQLite file, commits never checkpoint the WAL; the server's
    sqlite_loop.Checkpointer does, in a thread."""
    if url.startswith("sqlite"):
        # One connection: SQLite runs one write transaction at a time anyway, and every one of
        # ours begins IMMEDIATE. With several connections they collided on most requests, and
        # the loser slept in SQLite's busy handler (1 to 100 ms, polling); with one, they wait
        # in the pool's queue and start the moment the connection comes back.
        pool: dict[str, Any] = {} if ":memory:" in url else {"pool_size": 1, "max_overflow": 0}
        # Statements run on the event loop, without aiosqlite's thread (see app/sqlite_loop.py).
        path = sqlite_loop.database_path(make_url(url))
        # No reset on return: every transaction here ends itself (a Tx commits or rolls back,
        # an ORM session's connection rolls back on close), and without one a connection goes
        # back to the pool with no await, hence no greenlet (app/sql.py, Tx).
        engine = create_async_engine(
            url, async_creator=sqlite_loop.creator(path), pool_reset_on_return=None, **pool
        )
        _configure_sqlite(engine, checkpoint_elsewhere=checkpoint_elsewhere and path != ":memory:")
        return engine
    # The ORM's pool: since the call routes and the background loops run in a Tx, only the
    # user and customer routes, pruning and the CLI draw from it.
    return create_async_engine(url, pool_size=pool_size, max_overflow=6, pool_pre_ping=True)


def create_tx_engine(url: str, engine: AsyncEngine) -> AsyncEngine:
    """The engine whose pool Tx checks connections out of (app/sql.py).

    On SQLite, the engine itself: its one connection serialises every transaction. On
    PostgreSQL, a pool of its own without pre-ping: SQLAlchemy's ping is three round trips
    (BEGIN, a statement, ROLLBACK) per checkout, and a Tx finds a dead connection by its BEGIN
    instead, which it needs anyway.
    """
    if url.startswith("sqlite"):
        return engine
    # With the ORM's 8, at most 30 connections per instance, as before there were two pools.
    return create_async_engine(url, pool_size=8, max_overflow=14, pool_reset_on_return=None)


def _configure_sqlite(engine: AsyncEngine, *, checkpoint_elsewhere: bool) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot do BEGIN IMMEDIATE. Connections
    # are opened in autocommit mode (sqlite_loop) and every transaction begins here, IMMEDIATE:
    # it holds the write lock from its start and never fails half-way with "database is locked"
    # when it upgrades from reading to writing.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Never wait for a lock inside SQLite, on the loop: sqlite_loop retries asynchronously.
        cursor.execute("PRAGMA busy_timeout=0")
        if checkpoint_elsewhere:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            # After a burst, the WAL file goes back to at most this size when it restarts.
            cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: through exec_driver_sql this one statement cost some 80 us.
        await_(conn.connection.driver_connection.begin_immediate())


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class Unit(Protocol):
    """One transaction as the services see it: an AsyncSession, or a Tx (app/sql.py) that runs
    on a pooled driver connection without SQLAlchemy's session. Either keeps in `info` the app's
    context, its hooks, its pending events and its Db."""

    @property
    def info(self) -> dict[Any, Any]: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


AfterCommit = Callable[[], Awaitable[None] | None]
BeforeCommit = Callable[[Any], Awaitable[None]]


def before_commit(session: Unit, key: str, hook: BeforeCommit, *, last: bool = False) -> None:
    """Run hook once, inside the transaction, just before it commits; `last` after the others."""
    hooks: dict[str, tuple[BeforeCommit, bool]] = session.info.setdefault("before_commit", {})
    hooks[key] = (hook, last)


def after_commit(session: Unit, key: str, hook: AfterCommit) -> None:
    """Run hook once after this session's transaction commits (dropped on rollback)."""
    hooks: dict[str, AfterCommit] = session.info.setdefault("after_commit", {})
    hooks[key] = hook


async def run_after_commit(session: Unit) -> None:
    hooks: dict[str, AfterCommit] = session.info.pop("after_commit", {})
    for hook in hooks.values():
        result = hook()
        if result is not None:
            await result


async def end_for_now(session: AsyncSession) -> None:
    """Commit what the session read so far, before slow work that needs no database: on SQLite
    every transaction holds the write lock from its start, and every other request waits for it.
    The session's next statement begins a new transaction. Nothing may be pending yet."""
    assert not session.info.get("before_commit") and not session.info.get("outbox")
    # The Db of this transaction is bound to its connection, which goes back to the pool.
    session.info.pop("db", None)
    await session.commit()


async def commit(session: Unit) -> None:
    """Commit the transaction, then run its after-commit hooks."""
    # A hook may queue others (an offer made before commit writes events): run until none is left.
    while hooks := session.info.pop("before_commit", None):
        ordered: list[tuple[BeforeCommit, bool]] = list(hooks.values())
        for hook, _ in sorted(ordered, key=lambda item: item[1]):
            await hook(session)
    await sql.flush(session)
    await session.commit()
    await run_after_commit(session)
