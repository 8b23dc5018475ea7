"""What the app's lifespan builds and every request, task and websocket shares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.auth.throttle import SigninThrottle
from app.config import Settings
from app.db import Database, DbSession, open_database

if TYPE_CHECKING:
    from app.metrics.service import Metrics
    from app.realtime.bus import Bus
    from app.realtime.hub import Hub
    from app.realtime.outbox import Committed
    from app.routing.dispatcher import Dispatcher
    from ivr.flow import Flow


@dataclass
class AppContext:
    settings: Settings
    database: Database
    flow: Flow
    signins: SigninThrottle
    bus: Bus | None = None
    # This instance's websocket hub and routing loop (started by the lifespan).
    hub: Hub | None = None
    dispatcher: Dispatcher | None = None
    # This instance's series for GET /metrics (app/metrics/), bumped by the services.
    metrics: Metrics | None = None

    @classmethod
    def build(cls, settings: Settings, flow: Flow) -> AppContext:
        return cls(
            settings=settings,
            database=open_database(settings.database_url),
            flow=flow,
            signins=SigninThrottle(settings),
        )

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[DbSession]:
        """A session for a few reads, closed (its transaction rolled back) when done."""
        async with self.database.session() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DbSession]:
        """A session whose transaction commits when the block ends, or rolls back on error
        (for work that writes no events; else a unit of work, app/uow.py)."""
        async with self.database.session() as session:
            yield session
            await session.commit()

    async def published(self, events: list[Committed]) -> None:
        """Events just committed: to this instance's sockets at once, and to the others."""
        if not events or self.hub is None:
            return
        self.hub.deliver(events)
        self.hub.announce(events)
        # Let the sockets' senders write before the request writes its response: the agent's
        # screen pop then waits for no HTTP response.
        await asyncio.sleep(0)

    def wake_router(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.kick()

    async def dispose(self) -> None:
        await self.signins.close()
        await self.database.dispose()
