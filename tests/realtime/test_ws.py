"""GET /ws over a real socket: auth, routing, replay, slow clients, the safety poll."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from app.realtime.hub import MESSAGE_MAX_CHARS, QUEUE_SIZE, bus_message, parse_bus_message
from app.realtime.outbox import CHANNEL

from .conftest import DEADLINE_S, Ev, Server, close_code, recv, running


async def seqs_until(ws: ClientConnection, last: int) -> list[int]:
    """Seqs received up to and including last (events arrive in seq order)."""
    seqs: list[int] = []
    while not seqs or seqs[-1] < last:
        seqs.append((await recv(ws))["seq"])
    return seqs


async def test_auth_answers_ready_with_the_latest_seq_and_pong(server: Server) -> None:
    await server.emit(Ev("agent.status", server.users["alice"]))
    latest = await server.latest()
    ws, replayed, ready = await server.login("alice")
    async with ws:
        assert (replayed, ready) == ([], latest)
        await ws.send('{"type":"ping"}')
        assert await recv(ws) == {"type": "pong"}


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"type": "auth", "token": "not-a-token", "last_seq": None}, id="bad-token"),
        pytest.param("unknown-user", id="unknown-user"),
        pytest.param("valid-but", id="negative-last-seq"),
        pytest.param({"type": "hello"}, id="not-auth"),
        pytest.param("{not json", id="not-json"),
    ],
)
async def test_a_bad_first_message_closes_with_4401(server: Server, message: Any) -> None:
    if message == "unknown-user":
        server.users["ghost"] = 999_999
        message = {"type": "auth", "token": server.token("ghost"), "last_seq": None}
    elif message == "valid-but":
        message = {"type": "auth", "token": server.token("alice"), "last_seq": -1}
    ws = await server.open()
    await ws.send(message if isinstance(message, str) else json.dumps(message))
    assert await close_code(ws) == 4401


async def test_no_auth_within_5_s_closes_with_4401(server: Server) -> None:
    ws = await server.open()
    started = time.monotonic()
    assert await close_code(ws) == 4401
    assert 4.5 < time.monotonic() - started < DEADLINE_S


async def test_agents_get_their_own_events_and_supervisors_theirs(server: Server) -> None:
    alice, bob, boss = (server.users[name] for name in ("alice", "bob", "super"))
    sockets = {name: (await server.login(name))[0] for name in ("alice", "bob", "super")}
    try:
        stats, offer_a, offer_b, status_a, own_boss = await server.emit(
            Ev("queue.stats"),
            Ev("call.offered", alice, data={"to": "alice"}),
            Ev("call.offered", bob),
            Ev("agent.status", alice, to_supervisors=False),
            Ev("agent.status", boss, to_supervisors=False),
        )
        # A last event for each, so that "nothing else came" is "the next one is the marker".
        marks = await server.emit(
            *(Ev("mark", uid, to_supervisors=False) for uid in (alice, bob, boss))
        )
        mark = dict(zip(("alice", "bob", "super"), marks, strict=True))

        assert await seqs_until(sockets["alice"], mark["alice"]) == [
            offer_a,
            status_a,
            mark["alice"],
        ]
        assert await seqs_until(sockets["bob"], mark["bob"]) == [offer_b, mark["bob"]]
        assert await seqs_until(sockets["super"], mark["super"]) == [
            stats,
            offer_a,
            offer_b,
            own_boss,
            mark["super"],
        ]
    finally:
        for ws in sockets.values():
            await ws.close()


async def test_an_event_is_sent_as_stored(server: Server) -> None:
    alice = server.users["alice"]
    ws, _, _ = await server.login("alice")
    async with ws:
        [seq] = await server.emit(Ev("call.updated", alice, data={"id": 7, "note": "é ✓"}))
        raw = await asyncio.wait_for(ws.recv(), DEADLINE_S)
        event = json.loads(raw)
        assert event["seq"] == seq
        assert (event["type"], event["data"]) == ("call.updated", {"id": 7, "note": "é ✓"})
        assert event["at"].startswith("20") and "T" in event["at"]


async def test_a_reconnect_with_last_seq_replays_exactly_what_was_missed(server: Server) -> None:
    alice, bob = server.users["alice"], server.users["bob"]
    ws, _, _ = await server.login("alice")
    async with ws:
        [seen] = await server.emit(Ev("call.offered", alice))
        assert (await recv(ws))["seq"] == seen
    missed_1, _, _ = await server.emit(
        Ev("call.connected", alice), Ev("call.offered", bob), Ev("x")
    )
    [missed_2] = await server.emit(Ev("agent.status", alice, to_supervisors=False))
    await server.emit(Ev("queue.stats"))
    latest = await server.latest()

    ws, replayed, ready = await server.login("alice", last_seq=seen)
    async with ws:
        assert [e["seq"] for e in replayed] == [missed_1, missed_2]
        assert [e["type"] for e in replayed] == ["call.connected", "agent.status"]
        assert ready == latest
        # Live events follow, none of the replayed ones again.
        [new] = await server.emit(Ev("call.ended", alice))
        assert (await recv(ws))["seq"] == new


async def test_a_supervisor_replays_everything_meant_for_supervisors(server: Server) -> None:
    alice, boss = server.users["alice"], server.users["super"]
    start = await server.latest()
    seqs = await server.emit(
        Ev("call.created"),
        Ev("agent.status", alice, to_supervisors=False),
        Ev("call.offered", alice),
        Ev("mark", boss, to_supervisors=False),
    )
    ws, replayed, ready = await server.login("super", last_seq=start)
    async with ws:
        assert [e["seq"] for e in replayed] == [seqs[0], seqs[2], seqs[3]]
        assert ready == seqs[3]


async def test_null_last_seq_replays_nothing_and_zero_replays_all(server: Server) -> None:
    bob = server.users["bob"]
    seqs = await server.emit(Ev("call.offered", bob), Ev("call.connected", bob))
    ws, replayed, ready = await server.login("bob", last_seq=None)
    async with ws:
        assert replayed == []
        assert ready == await server.latest()
    ws, replayed, _ = await server.login("bob", last_seq=0)
    async with ws:
        assert [e["seq"] for e in replayed][-2:] == seqs
        assert all(e["seq"] <= ready for e in replayed)


async def test_every_event_once_in_order_across_reconnects_while_writing(server: Server) -> None:
    """Connections come and go while another task commits: the register-then-replay race."""
    alice, bob = server.users["alice"], server.users["bob"]
    start = await server.latest()
    expected: list[int] = []

    async def write() -> None:
        for i in range(120):
            seqs = await server.emit(
                Ev("call.updated", alice, to_supervisors=False, data={"i": i}), Ev("x", bob)
            )
            expected.append(seqs[0])

    writer = asyncio.create_task(write())
    got: list[int] = []
    position = start
    try:
        while len(got) < 120:
            # Unbounded client buffer: with unread events filling it, the client library would
            # stop reading and never see the server's reply to its close.
            ws, replayed, ready = await server.login("alice", last_seq=position, max_queue=None)
            async with ws:
                got.extend(e["seq"] for e in replayed)
                # After ready, the client stands at ready's seq or at its last event, if later.
                position = max([ready, *got])
                for _ in range(3):
                    if len(got) == 120:
                        break
                    got.append((await recv(ws))["seq"])
                    position = got[-1]
    finally:
        await writer
    assert got == expected


async def test_a_slow_client_is_closed_and_never_holds_up_another(server: Server) -> None:
    alice = server.users["alice"]
    # A client that does not read: its TCP buffers fill, then its queue in the hub.
    slow, _, _ = await server.login("alice", max_queue=1, ping_interval=None)
    fast, _, _ = await server.login("alice")
    connections = server.hub.connection_count
    blob = base64.b64encode(os.urandom(12_000)).decode()
    sent: list[int] = []
    try:
        # Bounded: a few times the queue, a few hundred MB at most; it ends far earlier.
        for _ in range(5 * QUEUE_SIZE // 100):
            seqs = await server.emit(
                *(
                    Ev("call.updated", alice, to_supervisors=False, data={"b": blob})
                    for _ in range(100)
                )
            )
            sent += seqs
            # Each batch reaches the fast client in time, whatever the slow one does.
            assert [(await recv(fast))["seq"] for _ in seqs] == seqs
            if server.hub.connection_count < connections:
                break
        else:
            pytest.fail("the slow client was never closed")
        assert len(sent) > QUEUE_SIZE

        # The slow client gets an in-order prefix, then 4408 ...
        received: list[int] = []
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(DEADLINE_S * 3):
                while True:
                    received.append(json.loads(await slow.recv())["seq"])
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
        assert received == sent[: len(received)]
        # ... and resumes exactly where it stopped.
        resume = received[-1] if received else sent[0] - 1
        again, replayed, _ = await server.login("alice", last_seq=resume)
        async with again:
            assert [e["seq"] for e in replayed] == sent[len(received) :]

        # The fast client is still served.
        [seq] = await server.emit(Ev("call.ended", alice))
        assert (await recv(fast))["seq"] == seq
    finally:
        await slow.close()
        await fast.close()


async def test_an_event_whose_bus_message_is_lost_comes_with_the_poll(
    settings: Settings, users: dict[str, int]
) -> None:
    # Another instance on the same database, polling often.
    quick = settings.model_copy(update={"poll_interval_s": 0.2})
    async with running(quick, users) as instance:
        ws, _, _ = await instance.login("alice")
        async with ws:
            [seq] = await instance.emit(Ev("call.offered", users["alice"]), wake=False)
            assert (await recv(ws))["seq"] == seq


async def test_instances_wake_each_other_through_redis(
    settings: Settings, users: dict[str, int], server: Server
) -> None:
    if settings.redis_url is None:
        pytest.skip("the in-process bus wakes only its own instance")
    async with running(settings, users) as other:
        ws, _, _ = await other.login("bob")
        async with ws:
            # Written through the first instance, read through the second, well before its poll.
            [seq] = await server.emit(Ev("call.offered", users["bob"]))
            assert (await asyncio.wait_for(recv(ws), settings.poll_interval_s / 4))["seq"] == seq


def needs_redis(settings: Settings) -> None:
    if settings.redis_url is None:
        pytest.skip("the in-process bus reaches only its own instance")


@contextlib.asynccontextmanager
async def bob_on_another_instance(
    settings: Settings, users: dict[str, int]
) -> AsyncIterator[tuple[Server, ClientConnection]]:
    """A second instance on the same database and Redis, and bob signed in there."""
    needs_redis(settings)
    async with running(settings, users) as other:
        ws, _, _ = await other.login("bob")
        async with ws:
            yield other, ws


async def within_poll(ws: ClientConnection, settings: Settings) -> dict[str, Any]:
    """The next message, well before the safety poll could have brought it."""
    return await asyncio.wait_for(recv(ws), settings.poll_interval_s / 4)


async def test_another_instances_events_come_in_its_bus_message_with_no_read(
    settings: Settings, users: dict[str, int], server: Server
) -> None:
    async with bob_on_another_instance(settings, users) as (other, ws):
        reads = other.hub.outbox_reads
        seqs = await server.emit(
            Ev("call.offered", users["bob"], data={"n": 1}),
            Ev("call.updated", users["bob"], data={"n": 2}),
        )
        got = [await within_poll(ws, settings) for _ in seqs]
        assert [(m["seq"], m["data"]) for m in got] == [(seqs[0], {"n": 1}), (seqs[1], {"n": 2})]
        assert other.hub.outbox_reads == reads


async def test_an_event_missing_before_a_bus_message_is_read_first_and_sent_in_order(
    settings: Settings, users: dict[str, int], server: Server
) -> None:
    async with bob_on_another_instance(settings, users) as (other, ws):
        reads = other.hub.outbox_reads
        # The first commit's message is lost; the second's tells of the second alone.
        [lost] = await server.emit(Ev("call.offered", users["bob"]), wake=False)
        [told] = await server.emit(Ev("call.updated", users["bob"]))
        first, second = await within_poll(ws, settings), await within_poll(ws, settings)
        assert (first["seq"], first["type"]) == (lost, "call.offered")
        assert (second["seq"], second["type"]) == (told, "call.updated")
        assert other.hub.outbox_reads > reads


async def test_a_bare_seq_on_the_bus_as_an_older_instance_sends_wakes_the_hub(
    settings: Settings, users: dict[str, int], server: Server
) -> None:
    needs_redis(settings)
    ws, _, _ = await server.login("bob")
    async with ws:
        [seq] = await server.emit(Ev("call.offered", users["bob"]), wake=False)
        assert server.ctx.bus is not None
        await server.ctx.bus.publish(CHANNEL, str(seq))
        assert (await within_poll(ws, settings))["seq"] == seq


async def test_an_event_too_large_for_a_bus_message_is_read_from_the_outbox(
    settings: Settings, users: dict[str, int], server: Server
) -> None:
    async with bob_on_another_instance(settings, users) as (other, ws):
        reads = other.hub.outbox_reads
        big = "x" * (MESSAGE_MAX_CHARS + 1)
        [seq] = await server.emit(Ev("call.offered", users["bob"], data={"notes": big}))
        got = await within_poll(ws, settings)
        assert (got["seq"], got["data"]["notes"]) == (seq, big)
        assert other.hub.outbox_reads > reads


def test_bus_messages_carry_events_and_anything_unreadable_is_only_a_wake_up() -> None:
    events = [(7, '{"seq":7}', 3, True), (8, '{"seq":8}', None, False)]
    assert parse_bus_message(bus_message(events)) == (8, events)
    assert parse_bus_message("12") == (12, [])
    assert parse_bus_message("12 [[1,2]]") == (12, [])
    assert parse_bus_message("12 {not json") == (12, [])
    assert parse_bus_message('12 [[12,{"seq":12},1,true]]') == (12, [])
    assert parse_bus_message('12 [[12,"{}","1",true]]') == (12, [])
    assert parse_bus_message("hello") == (None, [])
    big = [(9, "x" * (MESSAGE_MAX_CHARS + 1), 1, False)]
    assert bus_message(big) == "9"
