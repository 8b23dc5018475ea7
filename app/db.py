"""Database engine, sessions and the declarative base with a naming convention."""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    Executable,
    MetaData,
    Result,
    ScalarResult,
    Select,
    String,
    bindparam,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, IdentityMap
from sqlalchemy.orm.util import identity_key
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

log = logging.getLogger("tellonce.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# How long a statement waits for another process's lock on an SQLite file (`tellonce user
# create` or a migration run beside the server) before it fails.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The most a WAL file keeps of its size once checkpointed (SQLite's default keeps it at its
# largest after a burst).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


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


E = TypeVar("E", bound=enum.StrEnum)
T = TypeVar("T")


class EnumText(TypeDecorator[E]):
    """A StrEnum stored as its plain text value (a VARCHAR column, no database enum type), so
    that adding a member needs no migration; read back as the enum member."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int = 16) -> None:
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value: E | str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        # A dict lookup: calling the enum class costs some ten times as much, on every row read.
        return None if value is None else self._members[value]

    @property
    def _members(self) -> dict[str, E]:
        members: dict[str, E] | None = self.__dict__.get("_by_value")
        if members is None:
            members = self.__dict__["_by_value"] = {m.value: m for m in self.enum_class}
        return members


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def utcnow() -> datetime:
    return datetime.now(UTC)


class DbSession(Protocol):
    """The session the repositories take: SQLAlchemy's AsyncSession (PostgreSQL), or on the
    embedded SQLite default app/sqlite.py's LoopSession, which runs SQLAlchemy's synchronous
    Session on the event loop. Only these methods are used, so that either serves."""

    async def execute(
        self, statement: Executable, params: Any = None
    ) -> Result[*tuple[Any, ...]]: ...

    async def scalar(self, statement: Executable, params: Any = None) -> Any: ...

    async def scalars(self, statement: Executable, params: Any = None) -> ScalarResult[Any]: ...

    async def get(
        self,
        entity: type[T],
        ident: Any,
        *,
        populate_existing: bool = False,
        with_for_update: bool | None = None,
    ) -> T | None: ...

    @property
    def identity_map(self) -> IdentityMap: ...

    def add(self, instance: object) -> None: ...

    def add_all(self, instances: Iterable[object]) -> None: ...

    async def flush(self) -> None: ...

    def begin_nested(self) -> AbstractAsyncContextManager[Any]: ...

    def in_transaction(self) -> bool: ...

    def get_bind(self) -> Engine | Connection: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class Database(Protocol):
    """Where sessions come from: `async with database.session() as session` (closed at the
    end, its transaction rolled back unless committed)."""

    def session(self) -> AbstractAsyncContextManager[DbSession]: ...

    async def dispose(self) -> None: ...


class AsyncDatabase:
    """A database behind an async driver (asyncpg): SQLAlchemy's AsyncSession."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.engine = create_engine(url, pool_size=pool_size)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def open_database(url: str) -> Database:
    """The embedded SQLite default runs on the event loop (app/sqlite.py); others, async."""
    if url.startswith("sqlite"):
        from app.sqlite import LoopDatabase

        return LoopDatabase(url)
    return AsyncDatabase(url)


DB_CONNECT_TIMEOUT_S = 5.0


def create_engine(url: str, *, pool_size: int = 8) -> AsyncEngine:
    """An async engine: the server's on PostgreSQL; Alembic's and the tests' on either."""
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/").endswith(":"):
            engine = create_async_engine(url, poolclass=StaticPool)
        else:
            engine = create_async_engine(url, pool_size=1, max_overflow=0)
        configure_sqlite(engine.sync_engine, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
        return engine
    # No pool_pre_ping: it costs every checkout a round trip to the database. A connection
    # PostgreSQL dropped fails its first statement instead; the pool discards it and that one
    # request answers 503 (app/errors.py), nothing committed. A database out of reach is given
    # a few seconds to answer a new connection (asyncpg's own default is a minute), then 503.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=14,
        connect_args={"timeout": DB_CONNECT_TIMEOUT_S},
    )


def configure_sqlite(engine: Engine, *, busy_timeout_ms: int) -> None:
    """WAL, foreign keys, and transactions that begin IMMEDIATE (SQLAlchemy's documented recipe
    for the pysqlite and aiosqlite drivers): a transaction holds the write lock from its start,
    so it never fails half-way with "database is locked" when it goes from reading to writing."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # The driver's own transaction handling off: it would BEGIN DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def dialect_name(session: DbSession) -> str:
    return session.get_bind().dialect.name


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


async def hold_lock(session: DbSession, key: int) -> None:
    """Until this transaction ends, hold a lock that other transactions asking for the same key
    wait for, in any instance. On SQLite every transaction holds the whole file already."""
    if dialect_name(session) == "postgresql":
        await session.execute(_ADVISORY_LOCK, {"key": key})


M = TypeVar("M", bound=Base)


_BY_ID: dict[tuple[type[Any], bool], Select[Any]] = {}


def _by_id(model: type[M], *, lock: bool) -> Select[Any]:
    """SELECT of one row by primary key, built once per model: Session.get builds its query
    anew on every miss, and that costs more than running it."""
    found = _BY_ID.get((model, lock))
    if found is None:
        (key,) = inspect(model).primary_key
        found = select(model).where(key == bindparam("pk"))
        if lock:
            found = found.with_for_update().execution_options(populate_existing=True)
        _BY_ID[model, lock] = found
    return found


async def get_by_pk(session: DbSession, model: type[M], pk: Any) -> M | None:
    """The row by primary key: the session's own copy if it has read it, else one SELECT."""
    held = session.identity_map.get(identity_key(model, pk))
    if held is not None:
        return held
    return await session.scalar(_by_id(model, lock=False), {"pk": pk})


async def get_locked(session: DbSession, model: type[M], pk: Any) -> M | None:
    """The row by primary key, locked for this transaction's writes.

    On PostgreSQL, SELECT ... FOR UPDATE, read afresh even if the session holds the row. On
    SQLite every transaction here begins IMMEDIATE and so holds the whole database: a row the
    session has read in it is current, and is taken without a statement.
    """
    if dialect_name(session) == "sqlite":
        return await get_by_pk(session, model, pk)
    return await session.scalar(_by_id(model, lock=True), {"pk": pk})


async def checkpoint_wal_forever(path: str, *, interval_s: float = 1.0) -> None:
    """Copy an SQLite file's WAL into the database file every interval, in a thread, on a
    connection of its own. A PASSIVE checkpoint never blocks the server's writes; it keeps the
    file itself current (a copy of it alone holds recent calls), and leaves little for SQLite's
    automatic checkpoint, which bounds the WAL, to copy inside a commit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        while True:
            await asyncio.sleep(interval_s)
            job = asyncio.create_task(
                asyncio.to_thread(conn.execute, "PRAGMA wal_checkpoint(PASSIVE)")
            )
            try:
                # Shielded: a thread cannot be stopped, and the connection closes after it.
                await asyncio.shield(job)
            except asyncio.CancelledError:
                await asyncio.wait([job])
                raise
            except sqlite3.Error:
                log.exception("WAL checkpoint failed; trying again in %s s", interval_s)
    finally:
        conn.close()
