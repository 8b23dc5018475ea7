"""The call lifecycle's statements, run at the driver, in the transaction they belong to.

Measured on the embedded default, one statement costs about 5 us in sqlite3 and 185 to 550 us
through SQLAlchemy's Core, ORM and unit of work, which held half of every request's time. The
call lifecycle (calls, agents, the call context, the outbox, the hub's reads) therefore writes
its SQL once, with `:name` parameters, and runs it on a driver connection from the engine's
pool: that of a Tx (a transaction with no ORM session, for the call routes and the background
loops), or that of an ORM session (Db.of), in the session's own transaction. Schema,
migrations and the user and customer routes stay with SQLAlchemy. Values are stored exactly as
SQLAlchemy's column types store them, so either side reads what the other wrote.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.util import greenlet_spawn

from app.errors import Invalid

if TYPE_CHECKING:
    from app.db import Unit

# Dialect fragments a statement may name as {name}.
_FRAGMENTS = {
    "sqlite": {
        "for_update": "",
        "skip_locked": "",
        "skills": "json_each(users.skills) AS skill",
        "ids": "(SELECT value FROM json_each(:ids))",
        "names": "(SELECT value FROM json_each(:names))",
    },
    "postgresql": {
        "for_update": "FOR UPDATE",
        "skip_locked": "FOR UPDATE SKIP LOCKED",
        "skills": "json_array_elements_text(users.skills) AS skill(value)",
        "ids": "(SELECT unnest(CAST(:ids AS integer[])))",
        "names": "(SELECT unnest(CAST(:names AS text[])))",
    },
}
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

Params = dict[str, Any]


class Sql:
    """One statement, written once; its text for each dialect is made on first use.

    reads: the tables whose rows' pending writes (Row) must go out before it runs; None, the
    default, sends every pending write first.
    """

    __slots__ = ("_forms", "reads", "text")

    def __init__(self, text: str, *, reads: Iterable[str] | None = None) -> None:
        self.text = " ".join(text.split())
        self.reads: frozenset[str] | None = None if reads is None else frozenset(reads)
        self._forms: dict[str, tuple[str, tuple[str, ...]]] = {}

    def form(self, dialect: str) -> tuple[str, tuple[str, ...]]:
        """(SQL, parameter names in order): SQLite keeps :name, PostgreSQL numbers them $n."""
        found = self._forms.get(dialect)
        if found is None:
            text = self.text.format(**_FRAGMENTS[dialect])
            names: tuple[str, ...] = ()
            if dialect == "postgresql":
                order: list[str] = []

                def number(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name not in order:
                        order.append(name)
                    return f"${order.index(name) + 1}"

                text = _PARAM.sub(number, text)
                names = tuple(order)
            found = self._forms[dialect] = (text, names)
        return found


class Db:
    """A transaction at the driver: a Tx's, or an ORM session's (Db.of); one per transaction."""

    __slots__ = ("_lite", "_pg", "dialect", "identity", "memo", "pending", "postgres")

    def __init__(self, dialect: str, driver: Any) -> None:
        self.dialect = dialect
        self.postgres = dialect == "postgresql"
        self._lite: sqlite3.Connection | None = None if self.postgres else driver
        self._pg: Any = driver if self.postgres else None
        # Rows read in this transaction, one object per row (Row, below).
        self.identity: dict[tuple[str, int], Any] = {}
        # Rows with writes still pending, written before a statement that reads their table
        # and before commit.
        self.pending: list[Row] = []
        # Whatever a module keeps for the length of the transaction (the call context's rows).
        self.memo: dict[str, Any] = {}

    @classmethod
    async def of(cls, session: Unit) -> Db:
        db: Db | None = session.info.get("db")
        if db is not None:
            return db
        # An SQLAlchemy session (a Tx has its Db from the start): its connection's driver.
        assert isinstance(session, AsyncSession)
        conn = await session.connection()
        fairy = await conn.get_raw_connection()
        dialect = conn.dialect.name
        if dialect == "sqlite":
            driver: Any = fairy.driver_connection.sqlite3_connection  # type: ignore[union-attr]
        else:
            adapted: Any = fairy.dbapi_connection
            # SQLAlchemy's asyncpg adapter opens its transaction at its first statement; ours
            # run in that transaction, so it must be open before them.
            if getattr(adapted, "_transaction", None) is None:
                await adapted._start_transaction()
            driver = fairy.driver_connection
        db = session.info["db"] = cls(dialect, driver)
        return db

    # --- values as SQLAlchemy's column types store them -------------------------------------

    def ts(self, value: datetime | None) -> Any:
        """A datetime parameter. On SQLite, text as SQLAlchemy's DateTime writes it: UTC and
        always six digits of microseconds, so that text order is time order."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        if self.postgres:
            return value
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def dt(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def json_in(self, value: Any) -> str:
        return json.dumps(value)

    def json_out(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) and not self.postgres else value

    def ids(self, values: Iterable[int]) -> Any:
        """The parameter of {ids}: a list of integers."""
        items = [int(v) for v in values]
        return items if self.postgres else json.dumps(items)

    def names(self, values: Iterable[str]) -> Any:
        """The parameter of {names}: a list of strings."""
        items = [str(v) for v in values]
        return items if self.postgres else json.dumps(items)

    # --- statements -------------------------------------------------------------------------

    async def flush(self, tables: frozenset[str] | None = None) -> None:
        """Write the pending rows: all of them, or those of `tables` (the others wait)."""
        while self.pending:
            if tables is None:
                ready, self.pending = self.pending, []
            else:
                ready = [row for row in self.pending if row.TABLE in tables]
                if not ready:
                    return
                self.pending = [row for row in self.pending if row.TABLE not in tables]
            for row in ready:
                await row._save(self)

    async def rows(self, sql: Sql, params: Params | None = None) -> list[Sequence[Any]]:
        await self.flush(sql.reads)
        return await self._run(sql, params, fetch=True)

    async def row(self, sql: Sql, params: Params | None = None) -> Sequence[Any] | None:
        found = await self.rows(sql, params)
        return found[0] if found else None

    async def value(self, sql: Sql, params: Params | None = None) -> Any:
        found = await self.row(sql, params)
        return None if found is None else found[0]

    async def run(self, sql: Sql, params: Params | None = None) -> list[Sequence[Any]]:
        """A write, run now (pending row writes first); what it RETURNs, if anything."""
        return await self.rows(sql, params)

    async def write(self, sql: Sql, params: Params | None = None) -> None:
        """A write with no pending-row flush first: for the row writers themselves."""
        await self._run(sql, params, fetch=False)

    async def write_many(self, sql: Sql, rows: list[Params]) -> None:
        text, names = sql.form(self.dialect)
        try:
            if self._lite is not None:
                self._lite.executemany(text, rows)
            else:
                await self._pg.executemany(text, [[r[n] for n in names] for r in rows])
        except Exception as error:
            _refused(error)
            raise

    async def _run(self, sql: Sql, params: Params | None, *, fetch: bool) -> list[Sequence[Any]]:
        text, names = sql.form(self.dialect)
        try:
            if self._lite is not None:
                cursor = self._lite.execute(text, params or {})
                return cursor.fetchall() if fetch and cursor.description else []
            args = [params[n] for n in names] if params else []
            if fetch:
                return list(await self._pg.fetch(text, *args))
            await self._pg.execute(text, *args)
            return []
        except Exception as error:
            _refused(error)
            raise


def _is_disconnect(error: BaseException) -> bool:
    """The connection is gone (the database restarted, or closed it), not the statement wrong."""
    if isinstance(error, OSError | ConnectionError):
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(
        names & {"PostgresConnectionError", "InterfaceError", "ConnectionDoesNotExistError"}
    )


def _refused(error: Exception) -> None:
    """SQLSTATE class 22, a value the database refuses (U+0000 in text on PostgreSQL): 422."""
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith("22"):
        raise Invalid("a value in the request cannot be stored (text may not hold U+0000)")


async def flush(session: Unit) -> None:
    """Write what the session's rows still hold (app/db.commit calls this before COMMIT)."""
    db: Db | None = session.info.get("db")
    if db is not None:
        await db.flush()


async def _checkout(engine: AsyncEngine) -> Any:
    """A pooled connection. One at hand is taken without awaiting anything: SQLAlchemy's async
    checkout runs in a new greenlet, and each new greenlet maps and unmaps a 16 KiB frame stack
    (two system calls and its page faults, per transaction). Only opening a connection, or
    waiting for one, needs the greenlet."""
    pool: Any = engine.sync_engine.pool
    if pool.checkedin() > 0:
        try:
            return engine.sync_engine.raw_connection()
        except MissingGreenlet:
            pass  # it had been invalidated: opening it again awaits
    return await engine.raw_connection()


async def _checkin(fairy: Any) -> None:
    """Back to the pool, with no await when the pool keeps it; one beyond the pool's size is
    closed, and closing awaits the driver (in a greenlet)."""
    pool: Any = fairy._pool
    if pool.checkedin() < pool.size():
        fairy.close()
    else:
        await greenlet_spawn(fairy.close)


class Tx:
    """A transaction on a driver connection checked out of the engine's pool, with no session.

    For the routes and tasks that use Db alone: SQLAlchemy's session, connection and their
    events cost some 130 us per transaction (170 us against 40 us on this machine), a tenth of
    a handoff. The pool is the same, so that on SQLite its one connection still serialises every
    transaction, ours and the ORM's alike.
    """

    __slots__ = ("_fairy", "info")

    def __init__(self, fairy: Any, info: dict[Any, Any]) -> None:
        self._fairy: Any = fairy
        self.info = info

    @classmethod
    async def begin(cls, engine: AsyncEngine, info: dict[Any, Any]) -> Tx:
        dialect = engine.dialect.name
        for attempt in range(2):
            fairy: Any = await _checkout(engine)
            try:
                if dialect == "sqlite":
                    await fairy.driver_connection.begin_immediate()
                    driver = fairy.driver_connection.sqlite3_connection
                else:
                    driver = fairy.driver_connection
                    await driver.execute("BEGIN")
            except BaseException as error:
                if attempt == 0 and _is_disconnect(error):
                    # Closed while it sat in the pool (a database restart): drop it, take
                    # another. This is the pre-ping, paid only when it finds something.
                    await greenlet_spawn(fairy.invalidate)
                    continue
                await _checkin(fairy)
                raise
            info["db"] = Db(dialect, driver)
            return cls(fairy, info)
        raise AssertionError("unreachable")

    @classmethod
    @asynccontextmanager
    async def reading(cls, engine: AsyncEngine) -> AsyncIterator[Db]:
        """A pooled connection for reads in autocommit: no BEGIN, no COMMIT, one round trip a
        read on PostgreSQL."""
        fairy: Any = await _checkout(engine)
        try:
            if engine.dialect.name == "sqlite":
                yield Db("sqlite", fairy.driver_connection.sqlite3_connection)
            else:
                yield Db(engine.dialect.name, fairy.driver_connection)
        except BaseException as error:
            if _is_disconnect(error):
                await greenlet_spawn(fairy.invalidate)
                fairy = None
            raise
        finally:
            if fairy is not None:
                await _checkin(fairy)

    async def commit(self) -> None:
        fairy, self._fairy = self._fairy, None
        if fairy is None:
            return
        try:
            if self.info["db"].postgres:
                await fairy.driver_connection.execute("COMMIT")
            else:
                await fairy.driver_connection.commit()
        except BaseException:
            self._fairy = fairy
            await self.rollback()
            raise
        await _checkin(fairy)

    async def rollback(self) -> None:
        fairy, self._fairy = self._fairy, None
        if fairy is None:
            return
        try:
            if self.info["db"].postgres:
                driver = fairy.driver_connection
                if driver.is_in_transaction():
                    await driver.execute("ROLLBACK")
            else:
                await fairy.driver_connection.rollback()
        finally:
            # The pool's reset on return rolls back whatever is left; a dead one is dropped.
            if self.info["db"].postgres and fairy.driver_connection.is_closed():
                await greenlet_spawn(fairy.invalidate)
            else:
                await _checkin(fairy)


class Row:
    """A table row read through Db: one object per row and transaction, writes tracked.

    Setting an attribute queues an UPDATE of the columns set, run before the transaction's next
    read and before its commit (the ORM's autoflush, without its unit of work).
    """

    MODEL: ClassVar[Any]  # the ORM model of the table: its name and its columns' types
    TABLE: ClassVar[str]
    COLUMNS: ClassVar[tuple[str, ...]]
    # Which columns need converting, from the model's column types.
    DATETIMES: ClassVar[frozenset[str]]
    JSONS: ClassVar[frozenset[str]]
    BOOLS: ClassVar[frozenset[str]]
    _by_id: ClassVar[dict[bool, Sql]]
    _updates: ClassVar[dict[tuple[str, ...], Sql]]

    id: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "COLUMNS" in cls.__dict__:
            cls.TABLE = cls.MODEL.__tablename__
            cls.DATETIMES, cls.JSONS, cls.BOOLS = _kinds(cls.MODEL, cls.COLUMNS)
            select = f"SELECT {', '.join(cls.COLUMNS)} FROM {cls.TABLE} WHERE id = :id"
            reads = (cls.TABLE,)
            cls._by_id = {
                False: Sql(select, reads=reads),
                True: Sql(select + " {for_update}", reads=reads),
            }
            cls._updates = {}

    @classmethod
    def columns(cls, alias: str | None = None) -> str:
        """The select list, for statements that read these rows."""
        if alias is None:
            return ", ".join(cls.COLUMNS)
        return ", ".join(f"{alias}.{c}" for c in cls.COLUMNS)

    @classmethod
    def load(cls, db: Db, values: Sequence[Any]) -> Self:
        """The row's object in this transaction, with the values just read (COLUMNS order).

        On SQLite a row this transaction has read already is kept as it is: the transaction
        holds the write lock, so the row has changed only through this object (as Row.get
        assumes), and its pending writes are then newer than what was read.
        """
        key = (cls.TABLE, int(values[0]))
        obj: Self | None = db.identity.get(key)
        if obj is not None and not db.postgres:
            return obj
        if obj is None:
            obj = cls.__new__(cls)
            obj.__dict__["_dirty"] = set()
            obj.__dict__["_db"] = db
            db.identity[key] = obj
        state = obj.__dict__
        state.update(zip(cls.COLUMNS, values, strict=True))
        for name in cls.DATETIMES:
            state[name] = db.dt(state[name])
        for name in cls.JSONS:
            state[name] = db.json_out(state[name])
        for name in cls.BOOLS:
            if state[name] is not None:
                state[name] = bool(state[name])
        return obj

    @classmethod
    async def get(cls, db: Db, row_id: int, *, lock: bool = False) -> Self | None:
        """By id; lock: FOR UPDATE on PostgreSQL (SQLite holds the whole database already)."""
        if not db.postgres:
            found = db.identity.get((cls.TABLE, row_id))
            if found is not None:
                # The transaction holds the write lock: a row already read is current.
                return found
        values = await db.row(cls._by_id[lock], {"id": row_id})
        return None if values is None else cls.load(db, values)

    def __setattr__(self, name: str, value: Any) -> None:
        state = self.__dict__
        state[name] = value
        dirty: set[str] = state["_dirty"]
        if not dirty:
            state["_db"].pending.append(self)
        dirty.add(name)

    def _to_db(self, db: Db, name: str) -> Any:
        value = self.__dict__[name]
        if name in self.DATETIMES:
            return db.ts(value)
        if name in self.JSONS:
            return db.json_in(value)
        return value

    async def _save(self, db: Db) -> None:
        dirty: set[str] = self.__dict__["_dirty"]
        if not dirty:
            return
        names = tuple(sorted(dirty))
        params = {name: self._to_db(db, name) for name in names}
        dirty.clear()
        sql = self._updates.get(names)
        if sql is None:
            sets = ", ".join(f"{name} = :{name}" for name in names)
            sql = self._updates[names] = Sql(f"UPDATE {self.TABLE} SET {sets} WHERE id = :id")
        params["id"] = self.id
        await db.write(sql, params)


def _kinds(
    model: Any, columns: tuple[str, ...]
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(datetime, JSON, boolean) columns among `columns`, as the ORM model's table types them."""
    from sqlalchemy import JSON, Boolean

    from app.db import UTCDateTime

    types = {c.name: c.type for c in model.__table__.columns}
    kinds: tuple[set[str], set[str], set[str]] = (set(), set(), set())
    for name in columns:
        for found, kind in zip(kinds, (UTCDateTime, JSON, Boolean), strict=True):
            if isinstance(types[name], kind):
                found.add(name)
    return frozenset(kinds[0]), frozenset(kinds[1]), frozenset(kinds[2])
