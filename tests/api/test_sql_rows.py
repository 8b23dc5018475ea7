"""Rows changed through app/sql.py: each change is written before anything reads its table,
and by the commit in any case; a statement about other tables does not wait for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import commit, create_engine, create_sessionmaker
from app.sql import Db, Sql, Tx
from app.users.models import User
from app.users.repository import UserRow

_AVAILABLE = Sql("SELECT count(*) FROM users WHERE status = 'available'", reads=("users",))
_CALLS = Sql("SELECT count(*) FROM calls", reads=("calls",))
_NAME = Sql("SELECT display_name, status FROM users WHERE id = :id")


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


async def an_agent(engine: AsyncEngine) -> int:
    async with create_sessionmaker(engine)() as session:
        user = User(
            username="ada", password_hash="-", display_name="Ada", role="agent", skills=["billing"]
        )
        session.add(user)
        await session.commit()
        return user.id


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Db]:
    """A Tx's Db: committed (app.db.commit, which writes what is pending) unless this raises."""
    tx = await Tx.begin(engine, {})
    try:
        yield await Db.of(tx)
        await commit(tx)
    except BaseException:
        await tx.rollback()
        raise


async def stored(engine: AsyncEngine, agent_id: int) -> Any:
    async with Tx.reading(engine) as reader:
        return await reader.row(_NAME, {"id": agent_id})


async def test_a_change_is_written_before_its_table_is_read_and_not_before_another(
    engine: AsyncEngine,
) -> None:
    agent_id = await an_agent(engine)
    async with transaction(engine) as db:
        agent = await UserRow.get(db, agent_id, lock=True)
        assert agent is not None
        agent.status = "available"
        assert await db.value(_CALLS) == 0
        assert db.pending == [agent], "a read of calls wrote the user first"
        assert await db.value(_AVAILABLE) == 1, "a read of users missed the change"
        assert db.pending == []
        agent.display_name = "Ada L."
    assert await stored(engine, agent_id) == ("Ada L.", "available")


async def test_a_change_left_pending_goes_out_with_the_commit(engine: AsyncEngine) -> None:
    agent_id = await an_agent(engine)
    async with transaction(engine) as db:
        agent = await UserRow.get(db, agent_id, lock=True)
        assert agent is not None
        agent.status = "away"
        assert await db.value(_CALLS) == 0
    assert await stored(engine, agent_id) == ("Ada", "away")


async def test_a_rolled_back_change_is_never_written(engine: AsyncEngine) -> None:
    agent_id = await an_agent(engine)
    with pytest.raises(RuntimeError, match="bad input"):
        async with transaction(engine) as db:
            agent = await UserRow.get(db, agent_id, lock=True)
            assert agent is not None
            agent.status = "available"
            assert await db.value(_AVAILABLE) == 1
            raise RuntimeError("bad input")
    assert await stored(engine, agent_id) == ("Ada", "offline")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_row_read_again_keeps_what_the_transaction_set(engine: AsyncEngine) -> None:
    """On SQLite the transaction holds the write lock: the row read again is the same object,
    with its pending change (PostgreSQL reads it again, locked, after writing the change)."""
    agent_id = await an_agent(engine)
    unflushed = Sql(f"SELECT {UserRow.columns()} FROM users WHERE id = :id", reads=())
    async with transaction(engine) as db:
        agent = await UserRow.get(db, agent_id, lock=True)
        assert agent is not None
        agent.status = "available"
        values = await db.row(unflushed, {"id": agent_id})
        assert values is not None
        again = UserRow.load(db, values)
        assert again is agent
        assert again.status == "available"
