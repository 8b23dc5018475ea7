"""Pruning: events older than the retention go, oldest first; younger ones and seq stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.db import utcnow
from app.realtime import hub
from app.realtime.models import Event

from .conftest import Ev, Server, recv


async def age(server: Server, upto: int, by: timedelta, *, since: int = 0) -> None:
    """Make the events from seq `since` up to seq `upto` look `by` old."""
    async with server.ctx.transaction() as session:
        await session.execute(
            update(Event).where(Event.seq <= upto, Event.seq >= since).values(at=utcnow() - by)
        )


async def stored(server: Server) -> list[int]:
    async with server.ctx.reading() as session:
        return list((await session.scalars(select(Event.seq).order_by(Event.seq))).all())


async def test_old_events_go_in_batches_and_young_ones_stay(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = server.users["alice"]
    before = set(await stored(server))
    seqs = await server.emit(*(Ev("call.offered", alice) for _ in range(7)))
    await age(server, seqs[4], hub.RETENTION + timedelta(minutes=5))
    # Just young enough: kept.
    await age(server, seqs[5], hub.RETENTION - timedelta(minutes=5), since=seqs[5])
    monkeypatch.setattr(hub, "PRUNE_BATCH", 2)

    deleted = await hub.prune(server.ctx, now=utcnow())

    assert deleted == len(before) + 5
    assert await stored(server) == seqs[5:]
    # What was kept is still replayed to its agent.
    ws, replayed, ready = await server.login("alice", last_seq=seqs[4])
    async with ws:
        assert [e["seq"] for e in replayed] == seqs[5:]
        assert ready == seqs[-1]


async def test_when_every_event_is_old_all_go_and_seq_still_only_grows(server: Server) -> None:
    alice = server.users["alice"]
    seqs = await server.emit(Ev("call.offered", alice), Ev("call.ended", alice))
    await age(server, seqs[-1], hub.RETENTION + timedelta(hours=1))

    await hub.prune(server.ctx, now=utcnow())
    assert await stored(server) == []
    assert await hub.prune(server.ctx, now=utcnow()) == 0

    ws, _, ready = await server.login("alice", last_seq=None)
    async with ws:
        assert ready == seqs[-1]
        [new] = await server.emit(Ev("call.offered", alice))
        assert new == seqs[-1] + 1
        assert (await recv(ws))["seq"] == new
