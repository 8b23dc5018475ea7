"""This instance's routing loop: expire offers and wrap-ups when due, offer queued calls.

Offers are made in the transactions that queue a call or free an agent (routing.wake_router);
this loop expires offers and wrap-ups at their deadline, abandons calls whose phone tree fell
silent, publishes the queue figures, and offers what those transactions could not see. Woken shortly after a local commit that may
match a call to an agent, at the next deadline, and at the latest every poll interval, which
also covers changes made by other instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from app.calls import service as calls
from app.context import AppContext
from app.db import utcnow
from app.routing import service
from app.uow import unit_of_work

log = logging.getLogger("tellonce.routing")

# After a wake-up, wait this long so that a burst of commits costs one pass, not one each. The
# queue figures reach supervisors this much later; offers are made in the requests themselves.
COALESCE_S = 0.25


class Dispatcher:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._kicked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_stats: list[tuple[str, int, int, int]] | None = None
        # The earliest offer, wrap-up or silence deadline the last pass saw (None: none); not
        # yet known.
        self._due: datetime | None = utcnow()

    def kick(self) -> None:
        self._kicked.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tellonce-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        poll = self.ctx.settings.poll_interval_s
        while True:
            self._kicked.clear()
            deadline: datetime | None = None
            try:
                more, deadline = await self.run_once()
            except Exception:
                log.exception("routing pass failed")
                more = False
            if more:
                continue
            timeout = poll
            if deadline is not None:
                timeout = min(poll, max(0.0, (deadline - utcnow()).total_seconds()) + 0.005)
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for swallows a cancellation
            # that meets a wake-up, and the loop then never stops (seen at shutdown).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._kicked.wait()
            if self._kicked.is_set():
                await asyncio.sleep(COALESCE_S)

    async def run_once(self) -> tuple[bool, datetime | None]:
        """One pass in one transaction; returns (more to do at once, next deadline)."""
        async with unit_of_work(self.ctx) as uow:
            now = utcnow()
            # Every pass reads the next deadline, so nothing is due before the one it read.
            if self._due is not None and self._due <= now:
                await service.expire_offers(uow, now=now)
                await service.end_wrapups(uow, now=now)
                await calls.abandon_silent(uow, now=now)
            offered = await service.match(uow, now=now)
            stats = await service.queue_stats(uow, queues=sorted(self.ctx.flow.queues), now=now)
            shape = [(q.name, q.waiting, q.agents_available, q.agents_signed_in) for q in stats]
            if shape != self._last_stats:
                uow.emit("queue.stats", [q.model_dump(mode="json") for q in stats])
                self._last_stats = shape
            found = [
                await service.next_deadline(uow),
                await calls.next_silence_deadline(uow),
            ]
            deadline = min((d for d in found if d is not None), default=None)
        self._due = deadline
        return offered >= service.MATCH_BATCH, deadline
