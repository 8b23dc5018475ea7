"""The unit of work: one transaction, the events it causes, and what runs after it commits.

A request gets one from the `Uow` dependency (app/deps.py), a background task (the routing
loop, the hub's pruning) from `unit_of_work`. The CLI, which writes no events, commits a plain
session (app/cli.py, in_transaction). Services write through `uow.session` and queue events with `uow.emit`; they
never commit. `commit` runs the hooks queued for just before it (routing's match, so that an
offer lands in the same commit as the change that made it possible), writes the events to the
outbox numbered in commit order, commits, and only then hands the events to the websocket hub
and runs what was queued for after it. A rollback drops the events with everything else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.db import DbSession, utcnow

if TYPE_CHECKING:
    from app.context import AppContext


class RawJson:
    """Event data serialised already (a schema's model_dump_json()): stored and sent as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


EventData = dict[str, Any] | list[Any] | RawJson


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event of this unit of work, for user_id (an agent) and, if asked, every supervisor."""

    type: str
    data: EventData
    user_id: int | None
    to_supervisors: bool
    at: datetime


BeforeCommit = Callable[["UnitOfWork"], Awaitable[None]]


class UnitOfWork:
    def __init__(self, ctx: AppContext, session: DbSession) -> None:
        self.ctx = ctx
        self.session = session
        self.events: list[PendingEvent] = []
        self._before_commit: list[BeforeCommit] = []
        self._after_commit: list[Callable[[], None]] = []

    def emit(
        self,
        type: str,
        data: EventData,
        *,
        user_id: int | None = None,
        to_supervisors: bool = True,
    ) -> None:
        """Queue an event; data must be JSON-ready (model_dump(mode="json")) or RawJson."""
        self.events.append(PendingEvent(type, data, user_id, to_supervisors, utcnow()))

    def before_commit(self, hook: BeforeCommit) -> None:
        """Run hook once, in this transaction, just before it commits."""
        if hook not in self._before_commit:
            self._before_commit.append(hook)

    async def run_now(self, hook: BeforeCommit) -> None:
        """Run a hook queued for the commit now instead (if it is queued)."""
        if hook in self._before_commit:
            self._before_commit.remove(hook)
            await hook(self)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call once after this transaction commits (never if it rolls back)."""
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    async def commit(self) -> None:
        from app.realtime import outbox

        # A hook may queue another (a revoked offer frees an agent, which asks for a match).
        while self._before_commit:
            hooks, self._before_commit = self._before_commit, []
            for hook in hooks:
                await hook(self)
        events, self.events = self.events, []
        committed = await outbox.write(self.session, events)
        await self.session.commit()
        await self.ctx.published(committed)
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    async def rollback(self) -> None:
        self.events.clear()
        self._before_commit.clear()
        self._after_commit.clear()
        await self.session.rollback()

    @asynccontextmanager
    async def outside(self) -> AsyncIterator[DbSession]:
        """A short session of its own for reads before this unit's transaction has begun: what a
        slow check (a PIN's or a password's hash) needs, read without holding this unit's
        transaction, which on SQLite is the one connection every request waits for."""
        assert not self.session.in_transaction(), "reads outside must come before the unit's"
        async with self.ctx.database.session() as session:
            yield session


@asynccontextmanager
async def unit_of_work(ctx: AppContext) -> AsyncIterator[UnitOfWork]:
    """A unit of work for background tasks: committed on success, else rolled back."""
    async with ctx.database.session() as session:
        uow = UnitOfWork(ctx, session)
        try:
            yield uow
            await uow.commit()
        except BaseException:
            await uow.rollback()
            raise
