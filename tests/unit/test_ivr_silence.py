"""The silence sweep in process: each silent call abandoned once, whoever sweeps; no other."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from app.calls import service
from app.calls.states import CallState
from app.context import AppContext
from app.db import utcnow
from app.uow import UnitOfWork

from .factories import Factory, InUow, state_of


async def test_two_sweeps_at_once_abandon_each_silent_call_once(
    ctx: AppContext, make: Factory, in_uow: InUow
) -> None:
    now = utcnow()
    silence = timedelta(seconds=ctx.settings.ivr_silence_s)
    silent = await make.call(state=CallState.ivr, ivr_active_at=now - silence * 2)
    speaking = await make.call(state=CallState.ivr, ivr_active_at=now - silence / 2)
    queued = await make.call(ivr_active_at=now - silence * 2)  # left the tree: not the sweep's
    events: list[str] = []

    async def sweep(uow: UnitOfWork) -> int:
        ended = await service.abandon_silent(uow, now=now)
        events.extend(e.type for e in uow.events)
        return ended

    # Two instances' routing loops at the same moment.
    counts = await asyncio.gather(in_uow(sweep), in_uow(sweep))
    assert sorted(counts) == [0, 1]
    assert events == ["call.abandoned"]
    assert (await state_of(ctx, silent.id))[0] == CallState.abandoned
    assert (await state_of(ctx, speaking.id))[0] == CallState.ivr
    assert (await state_of(ctx, queued.id))[0] == CallState.queued

    async def deadline(uow: UnitOfWork) -> object:
        return await service.next_silence_deadline(uow)

    assert await in_uow(deadline) == speaking.ivr_active_at + silence
