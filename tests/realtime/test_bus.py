"""The bus contract, the same assertions over every backend; Redis restarts on top."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from app.realtime.bus import Bus, make_bus
from app.realtime.memory import MemoryBus
from app.realtime.redis import RedisBus

REDIS_URL = "redis://127.0.0.1:6379/0"
DEADLINE_S = 5.0


@pytest.fixture(
    params=["memory", pytest.param("redis", marks=pytest.mark.redis)],
)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    bus = make_bus(None if request.param == "memory" else REDIS_URL)
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.disconnect()


def channel() -> str:
    # The Redis server is shared: a fresh channel per test keeps others' messages out.
    return f"test.{uuid.uuid4().hex}"


async def receive(messages: AsyncIterator[str]) -> str:
    return await asyncio.wait_for(anext(messages), DEADLINE_S)


def test_make_bus_picks_the_backend_by_url() -> None:
    assert isinstance(make_bus(None), MemoryBus)
    assert isinstance(make_bus(REDIS_URL), RedisBus)


async def test_every_subscriber_of_a_channel_gets_its_messages_in_order(bus: Bus) -> None:
    a, b = channel(), channel()
    async with bus.subscribe(a) as first, bus.subscribe(a) as second, bus.subscribe(b) as other:
        await bus.publish(a, "1")
        await bus.publish(a, "2")
        await bus.publish(b, "x")
        assert [await receive(first), await receive(first)] == ["1", "2"]
        assert [await receive(second), await receive(second)] == ["1", "2"]
        # In order, so a first message "x" proves that nothing of channel a came here.
        assert await receive(other) == "x"


async def test_a_subscription_is_live_on_entry_and_gone_on_exit(bus: Bus) -> None:
    name = channel()
    async with bus.subscribe(name) as messages:
        await bus.publish(name, "hello")
        assert await receive(messages) == "hello"
    await bus.publish(name, "nobody listens")
    async with bus.subscribe(name) as messages:
        await bus.publish(name, "again")
        # The message sent between the subscriptions is not replayed to the new one.
        assert await receive(messages) == "again"


async def test_publish_without_subscribers_and_ping(bus: Bus) -> None:
    await bus.publish(channel(), "into the void")
    assert await bus.ping() is True


class Proxy:
    """A TCP proxy in front of Redis that can be stopped and started: a Redis restart."""

    def __init__(self, target_port: int = 6379) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        # Aborted sockets end every pipe; wait for that rather than leave tasks to the loop.
        if self._handlers:
            await asyncio.wait(self._handlers)
        self._handlers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()


async def first_delivered(bus: Bus, name: str, pending: asyncio.Future[str]) -> str:
    """Publish until pending gets a message: those sent while reconnecting are lost."""
    async with asyncio.timeout(DEADLINE_S * 3):
        for attempt in range(10_000):
            await bus.publish(name, f"after-{attempt}")
            done, _ = await asyncio.wait({pending}, timeout=0.1)
            if done:
                break
    return pending.result()


@pytest.mark.redis
async def test_redis_bus_rides_out_a_redis_restart() -> None:
    proxy = Proxy()
    await proxy.start()
    bus = RedisBus(f"redis://127.0.0.1:{proxy.port}/0")
    await bus.connect()
    name = channel()
    try:
        async with bus.subscribe(name) as messages:
            await bus.publish(name, "before")
            assert await receive(messages) == "before"

            await proxy.stop()
            # Down: nothing raises, readiness says so.
            await bus.publish(name, "lost")
            assert await bus.ping() is False
            await proxy.start()

            pending = asyncio.ensure_future(anext(messages))
            assert (await first_delivered(bus, name, pending)).startswith("after-")
            assert await bus.ping() is True
    finally:
        await bus.disconnect()
        await proxy.stop()


@pytest.mark.redis
async def test_redis_bus_down_from_the_start_never_raises() -> None:
    proxy = Proxy()
    await proxy.start()
    await proxy.stop()
    bus = RedisBus(f"redis://127.0.0.1:{proxy.port}/0")
    await bus.connect()
    name = channel()
    try:
        assert await bus.ping() is False
        await bus.publish(name, "lost")
        async with bus.subscribe(name) as messages:
            pending = asyncio.ensure_future(anext(messages))
            done, _ = await asyncio.wait({pending}, timeout=0.5)
            assert not done  # still trying, not raising
            await proxy.start()
            assert (await first_delivered(bus, name, pending)).startswith("after-")
    finally:
        await bus.disconnect()
        await proxy.stop()
