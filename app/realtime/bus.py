"""The bus interface: news of commits between instances; the outbox table holds the truth."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager


class Bus(abc.ABC):
    """Publish and subscribe to short string messages on named channels.

    Delivery is best effort by design: readers also poll the database, so a lost message only
    delays. publish() therefore never raises for a transport failure (it runs after commit, when
    the change is already done), and a subscription's iterator never raises one either.
    """

    # True when other processes hear what this one publishes. The hub then sends the events
    # themselves, which spares each other instance a read of the outbox; otherwise (the
    # in-process bus) only a wake-up.
    shared: bool = False

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def disconnect(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, channel: str, message: str) -> None: ...

    @abc.abstractmethod
    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Subscribed on entry: every message published after entry is yielded (best effort)."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the bus can carry messages now (readiness)."""


def make_bus(redis_url: str | None) -> Bus:
    if redis_url is None:
        from app.realtime.memory import MemoryBus

        return MemoryBus()
    from app.realtime.redis import RedisBus

    return RedisBus(redis_url)
