"""Sign-in throttling: failed sign-ins counted per username and per client address (the `limits`
library, moving window), in Redis when one is configured so that every instance shares the count.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.config import Settings
from app.errors import TooManyRequests, Unavailable

log = logging.getLogger("tellonce")

T = TypeVar("T")

# A Redis that answers in none of this is taken as down: a sign-in waits no longer for it.
REDIS_TIMEOUT_S = 0.5
# After a Redis fault, counts stay in this instance's memory this long before Redis is tried
# again, so that a Redis that times out does not slow every sign-in by REDIS_TIMEOUT_S.
REDIS_RETRY_S = 5.0
SHARED_FAULTS = (StorageError, RedisError, OSError, TimeoutError)


def address_key(host: str | None) -> str:
    """Whom an address counts as: itself, or for IPv6 its /64, which one client holds whole."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def username_key(username: str) -> str:
    """A fixed-length key: a username is any text the client sends, and it is kept out of Redis."""
    return hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:32]


@dataclass
class Attempt:
    """One sign-in let through to its password check; the route sets ok once it knows."""

    user: str
    address: str
    ok: bool = False


class SigninThrottle:
    """Decides, before any hashing, whether a sign-in may be checked, and counts its failure.

    A moving window: at most N failures in any window of W seconds, where a fixed window would
    let 2N through across a boundary. Only failures count, so that no number of successful
    sign-ins (a whole shift behind one office address) can use a count up. Sign-ins of one
    username take turns on an instance, each checked against the failures of those before it:
    guesses sent at once cannot all slip past a count that is still low. Instances sharing
    Redis do not wait for each other, so with K of them at most K - 1 guesses more get through.
    """

    def __init__(self, settings: Settings) -> None:
        window = settings.signin_window_s
        self.per_user: RateLimitItem = RateLimitItemPerSecond(
            settings.signin_failures_per_user, window, namespace="tellonce-signin-user"
        )
        self.per_address: RateLimitItem = RateLimitItemPerSecond(
            settings.signin_failures_per_address, window, namespace="tellonce-signin-address"
        )
        self.window_s = window
        self.max_pending = settings.signin_max_pending
        self.pending = 0
        # The usernames with a sign-in under way here, each with the lock they take turns on.
        self.turns: dict[str, asyncio.Lock] = {}
        self._waiting: collections.Counter[str] = collections.Counter()
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._pool: ConnectionPool | None = None
        self._shared: RateLimiter | None = None
        self._shared_retry_at = 0.0
        self._shared_down = False
        if settings.redis_url is not None:
            self._pool = ConnectionPool.from_url(
                settings.redis_url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                # One retry, at once: enough for a pooled connection that Redis dropped.
                retry=Retry(NoBackoff(), 1),
            )
            # limits' asyncio Redis storage on redis-py's client over this pool (its documented
            # connection_pool option), which close() ends. The pool holds the address and the
            # password: the URI only names the kind of storage.
            options: dict[str, Any] = {"connection_pool": self._pool}
            storage = RedisStorage(
                "async+redis://",
                key_prefix="tellonce",
                wrap_exceptions=True,
                implementation="redispy",
                **options,
            )
            self._shared = MovingWindowRateLimiter(storage)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    @asynccontextmanager
    async def attempt(self, username: str, host: str | None) -> AsyncIterator[Attempt]:
        """Let one sign-in through to its password check, or refuse it: 503 while too many
        sign-ins are being checked on this instance, 429 while its username or its address has
        had too many failures. A refused sign-in costs no hashing and counts as no failure."""
        attempt = Attempt(user=username_key(username), address=address_key(host))
        async with self._turn(attempt.user):
            if self.pending >= self.max_pending:
                raise Unavailable("too many sign-ins at once; try again shortly", retry_after=1)
            self.pending += 1
            try:
                await self._admit(attempt)
                yield attempt
                if not attempt.ok:
                    await self._run(lambda limiter: limiter.hit(self.per_user, attempt.user))
                    await self._run(lambda limiter: limiter.hit(self.per_address, attempt.address))
            finally:
                self.pending -= 1

    @asynccontextmanager
    async def _turn(self, user: str) -> AsyncIterator[None]:
        """This username's turn on this instance; the lock goes when no sign-in of it is left."""
        lock = self.turns.setdefault(user, asyncio.Lock())
        self._waiting[user] += 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[user] -= 1
            if not self._waiting[user]:
                del self._waiting[user], self.turns[user]

    async def _admit(self, attempt: Attempt) -> None:
        for item, key, whose in (
            (self.per_address, attempt.address, "from this address"),
            (self.per_user, attempt.user, "for this username"),
        ):
            if not await self._run(lambda limiter: limiter.test(item, key)):  # noqa: B023
                wait = await self._retry_after(item, key)
                raise TooManyRequests(
                    f"too many failed sign-ins {whose}; try again in {wait} s", retry_after=wait
                )

    async def _retry_after(self, item: RateLimitItem, key: str) -> int:
        """Whole seconds until the oldest failure in the window leaves it (1 to the window)."""
        stats = await self._run(lambda limiter: limiter.get_window_stats(item, key))
        return max(1, min(self.window_s, math.ceil(stats.reset_time - time.time())))

    async def _run(self, step: Callable[[RateLimiter], Awaitable[T]]) -> T:
        """step on the shared counts (Redis), or on this instance's own while Redis fails: a
        centre whose Redis blinks keeps signing in, each instance counting for itself."""
        if self._shared is not None and time.monotonic() >= self._shared_retry_at:
            try:
                result = await step(self._shared)
            except SHARED_FAULTS as exc:
                self._shared_retry_at = time.monotonic() + REDIS_RETRY_S
                if not self._shared_down:
                    self._shared_down = True
                    log.warning(
                        "sign-in throttle: Redis unreachable (%s); counting failed sign-ins "
                        "on this instance alone until it answers",
                        type(exc).__name__,
                    )
            else:
                if self._shared_down:
                    self._shared_down = False
                    log.warning("sign-in throttle: Redis answers again; counts are shared again")
                return result
        return await step(self._memory)
