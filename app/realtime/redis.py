"""The Redis bus: pub/sub between instances, riding out Redis restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.realtime.bus import Bus

log = logging.getLogger("tellonce.bus")

# Short, because publish runs after a request's commit: a Redis that is down must not hold the
# response. Reads on a subscription block without a timeout (redis-py exempts them).
_TIMEOUT_S = 2.0
_BACKOFF_MIN_S = 0.1
_BACKOFF_MAX_S = 5.0
# OSError covers refused connections and socket timeouts (asyncio.TimeoutError is one).
_DOWN = (RedisError, OSError)
# How long publish waits for Redis. A Redis that hangs without closing its sockets (paused, or
# a network that drops packets) would otherwise hold every response for the socket timeouts.
_PUBLISH_WAIT_S = 0.25


class RedisBus(Bus):
    shared = True

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Redis | None = None
        self._publish_failing = False
        # A publish still waiting on Redis after _PUBLISH_WAIT_S: until it ends, others are
        # dropped (the safety poll delivers), so a hung Redis costs no request more than that.
        self._stuck: asyncio.Task[None] | None = None

    @property
    def client(self) -> Redis:
        if self._client is None:
            raise RuntimeError("RedisBus.connect() was not called")
        return self._client

    async def connect(self) -> None:
        # No round trip here: a Redis that is down at start only delays events to the poll, and
        # readiness (ping) says so.
        self._client = Redis.from_url(
            self._url,
            decode_responses=True,
            socket_connect_timeout=_TIMEOUT_S,
            socket_timeout=_TIMEOUT_S,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 1),
        )

    async def disconnect(self) -> None:
        if self._stuck is not None:
            self._stuck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stuck
            self._stuck = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def publish(self, channel: str, message: str) -> None:
        if self._stuck is not None:
            if not self._stuck.done():
                return
            self._stuck = None
        task = asyncio.create_task(self._publish(channel, message))
        done, _ = await asyncio.wait({task}, timeout=_PUBLISH_WAIT_S)
        if done:
            task.result()
        else:
            self._stuck = task

    async def _publish(self, channel: str, message: str) -> None:
        try:
            await self.client.publish(channel, message)
        except _DOWN as exc:
            if not self._publish_failing:
                log.warning("redis publish failed, readers fall back to polling: %s", exc)
            self._publish_failing = True
            return
        if self._publish_failing:
            log.info("redis publish works again")
            self._publish_failing = False

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        subscription = _Subscription(self.client, channel)
        try:
            # A first try now, so that messages published right after entry arrive; if Redis is
            # down, the iterator keeps trying.
            with contextlib.suppress(*_DOWN):
                await subscription.open()
            yield subscription.messages()
        finally:
            await subscription.close()

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except _DOWN:
            return False


class _Subscription:
    def __init__(self, client: Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._pubsub: PubSub | None = None

    async def open(self) -> None:
        await self.close()
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            # Wait for Redis to confirm, so that the subscription is live when open() returns.
            async with asyncio.timeout(_TIMEOUT_S):
                while True:
                    reply = await pubsub.get_message(timeout=_TIMEOUT_S)
                    if reply is not None and reply["type"] == "subscribe":
                        break
        except BaseException:
            with contextlib.suppress(*_DOWN):
                await pubsub.aclose()
            raise
        self._pubsub = pubsub

    async def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*_DOWN):
                await pubsub.aclose()

    async def messages(self) -> AsyncIterator[str]:
        backoff = _BACKOFF_MIN_S
        while True:
            try:
                if self._pubsub is None:
                    await self.open()
                    log.info("redis subscription to %s is back", self._channel)
                backoff = _BACKOFF_MIN_S
                assert self._pubsub is not None
                while True:
                    reply = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=None
                    )
                    if reply is not None and reply["type"] == "message":
                        yield str(reply["data"])
            except _DOWN as exc:
                # Once per outage, not once per retry.
                level = logging.WARNING if backoff == _BACKOFF_MIN_S else logging.DEBUG
                log.log(level, "redis subscription to %s lost, retrying: %s", self._channel, exc)
                await self.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
