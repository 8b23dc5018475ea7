"""PostgreSQL out of reach for a while (a network cut, a restart that refuses connections):
requests meanwhile answer 503 with Retry-After, never 500 and never hang, and the server
recovers by itself when the database is back, its background loops included.

The server reaches PostgreSQL through a TCP relay of the test's own, which the test cuts (every
connection dropped, new ones refused) and restores on the same port. The relay runs on a loop
of its own, in a thread: the server starts synchronously, and reaches the database meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import make_url
from support import DEADLINE, Api, start_server

pytestmark = pytest.mark.postgres


class Relay:
    """A TCP relay to PostgreSQL that can be cut and restored on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(DEADLINE)

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self.loop).result(DEADLINE)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < deadline, "not within the deadline"


async def test_a_database_out_of_reach_answers_503_and_the_server_recovers(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the embedded database cannot be out of reach")
    url = make_url(db_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    relay.start()
    relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    live = start_server(relayed, offer_timeout_s=300.0)
    api = Api(live)
    try:
        alice = await api.login("alice")
        assert (await api.http.get("/api/me", headers=alice)).status_code == 200

        relay.cut()
        for _ in range(5):
            started = time.monotonic()
            r = await api.http.put("/api/me/status", json={"status": "available"}, headers=alice)
            assert r.status_code == 503, r.text
            assert r.json()["detail"].startswith("the database")
            assert int(r.headers["retry-after"]) >= 1
            assert time.monotonic() - started < DEADLINE
        r = await api.http.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["database"] is False

        relay.start()

        async def answers() -> bool:
            r = await api.http.put("/api/me/status", json={"status": "available"}, headers=alice)
            assert r.status_code in (200, 503), r.text
            return r.status_code == 200

        await until(answers)
        # The routing loop lived through it: a new call is offered to the agent now available.
        call_id = await api.new_call("+15551230001", intent="billing")

        async def offered() -> bool:
            return (await api.call(call_id))["state"] == "offered"

        await until(offered)
        assert (await api.http.get("/readyz")).status_code == 200
    finally:
        await api.http.aclose()
        live.stop()
        relay.close()
