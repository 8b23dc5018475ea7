"""What the app's lifespan builds and every request, task and websocket shares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import commit, create_engine, create_sessionmaker, create_tx_engine
from app.sql import Db, Tx
from app.sqlite_loop import Checkpointer

if TYPE_CHECKING:
    from app.realtime.bus import Bus
    from ivr.flow import Flow


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    # The pool of Tx (the engine itself on SQLite; see app.db.create_tx_engine).
    tx_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    flow: Flow
    bus: Bus | None = None
    # Wakes this instance's router after a commit that may let a call meet an agent.
    wake_router: Callable[[], None] | None = None
    # Hands events this instance committed to its websocket hub: (seq, payload, user, supervisors).
    deliver_local: Callable[[list[tuple[int, str, int | None, bool]]], None] | None = None
    # Tells the other instances, through the bus, of events this instance committed (as above).
    announce: Callable[[list[tuple[int, str, int | None, bool]]], None] | None = None
    # On an SQLite file: what checkpoints its WAL, off the loop (started by the lifespan).
    checkpointer: Checkpointer | None = None

    @classmethod
    def build(cls, settings: Settings, flow: Flow) -> AppContext:
        path = settings.sqlite_path()
        engine = create_engine(settings.database_url, checkpoint_elsewhere=path is not None)
        return cls(
            settings=settings,
            engine=engine,
            tx_engine=create_tx_engine(settings.database_url, engine),
            sessionmaker=create_sessionmaker(engine),
            flow=flow,
            checkpointer=None
            if path is None
            else Checkpointer(str(path), hold=lambda: Tx.reading(engine)),
        )

    def new_session(self) -> AsyncSession:
        session = self.sessionmaker()
        session.info["ctx"] = self
        return session

    async def begin(self) -> Tx:
        """A transaction for code that uses Db alone (app/sql.py), without an ORM session."""
        return await Tx.begin(self.tx_engine, {"ctx": self})

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Tx]:
        """begin(), committed on success, else rolled back."""
        tx = await self.begin()
        try:
            yield tx
            await commit(tx)
        except BaseException:
            await tx.rollback()
            raise

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Db]:
        """One or a few reads, each seeing what is committed, in no transaction of its own."""
        async with Tx.reading(self.tx_engine) as db:
            yield db

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.tx_engine is not self.engine:
            await self.tx_engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work for background tasks and the CLI: commit on success, else roll back."""
        async with self.new_session() as session:
            try:
                yield session
                await commit(session)
            except BaseException:
                await session.rollback()
                raise
