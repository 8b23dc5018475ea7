"""The websocket hub: one reader per process fans new outbox events out to the sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from app.audit import service as audit
from app.auth.service import accepts
from app.db import utcnow
from app.realtime import repository
from app.realtime.outbox import CHANNEL, Committed, is_type
from app.uow import unit_of_work
from app.users import repository as users

if TYPE_CHECKING:
    from app.context import AppContext

log = logging.getLogger("tellonce.hub")

QUEUE_SIZE = 1000
# Close codes of /ws (docs/API.md lists them with what a client does about each).
TOO_BIG = 1009
SERVER_ERROR = 1011
RESTARTING = 1012
UNAUTHORIZED = 4401
ORIGIN_REFUSED = 4403
TOO_SLOW = 4408
REPLACED = 4409
TOO_MANY_MESSAGES = 4429
# The event that ends a user's tokens (a sign-out, a disable): each hub then closes the sockets
# of that user whose token the user row no longer honours.
SIGNED_OUT = "user.signed_out"
BATCH = 500
# The contract keeps events 24 h for replay; keep twice that so that no edge is ever near.
RETENTION = timedelta(hours=48)
PRUNE_EVERY_S = 600.0
# Old events are deleted this many at a time, each batch in a transaction of its own, so that a
# large backlog never holds the database (on SQLite, the loop) for long.
PRUNE_BATCH = 2000
# What a connection's queue carries: (seq, text) for an event, (None, text) for a control message.
Outgoing = tuple[int | None, str]
# A bus message carries the events themselves up to this size (their JSON); a larger batch goes
# as its newest seq alone, and the other hubs read it from the outbox.
MESSAGE_MAX_CHARS = 256 * 1024


class Connection:
    """One authenticated socket as the hub sees it: who it is, and what waits to be sent.

    Kept small, as thousands are open at once: one deque, and a future only while the sender
    waits (an asyncio.Queue holds three deques, an Event one more).
    """

    __slots__ = (
        "_expiry",
        "_items",
        "_limit",
        "_stopped",
        "_waiter",
        "close_code",
        "supervisor",
        "token_version",
        "user_id",
    )

    def __init__(
        self, user_id: int, *, supervisor: bool, queue_size: int, token_version: int = 0
    ) -> None:
        self.user_id = user_id
        self.supervisor = supervisor
        self.token_version = token_version
        self.close_code: int | None = None
        self._items: deque[Outgoing] = deque()
        self._limit = queue_size
        self._stopped = False
        self._waiter: asyncio.Future[None] | None = None
        # Closes the socket when its token expires: one timer handle, no task.
        self._expiry: asyncio.TimerHandle | None = None

    def put(self, item: Outgoing) -> bool:
        """Queue without ever waiting; a full queue closes the connection (code 4408)."""
        if self._stopped:
            return False
        if len(self._items) >= self._limit:
            self.close(TOO_SLOW)
            return False
        self._items.append(item)
        self._wake()
        return True

    async def get(self) -> Outgoing | None:
        """The next item to send, waiting for one; None once the connection is stopping."""
        while not self._stopped:
            if self._items:
                return self._items.popleft()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return None

    def close(self, code: int) -> None:
        """Ask the socket's handler to stop and close with code; it resumes with last_seq."""
        if self.close_code is None and not self._stopped:
            self.close_code = code
        self.stop()

    def stop(self) -> None:
        """The socket is gone or closing: nothing more is queued, the sender stops."""
        self._stopped = True
        self._items.clear()
        self._wake()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def expire_at(self, expires_at: float) -> None:
        """Close with 4401 when the token expires (expires_at: seconds since the epoch)."""
        delay = max(0.0, expires_at - time.time())
        self._expiry = asyncio.get_running_loop().call_later(delay, self.close, UNAUTHORIZED)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def prune(ctx: AppContext, *, now: datetime) -> int:
    """Delete the events older than RETENTION, a batch per transaction; how many."""
    async with ctx.reading() as session:
        oldest = await repository.oldest_seq(session)
        if oldest is None:
            return 0
        first_kept = await repository.first_seq_since(session, since=now - RETENTION)
        if first_kept is None:
            first_kept = await repository.latest_seq(session) + 1
    deleted = 0
    below = oldest
    while below < first_kept:
        below = min(below + PRUNE_BATCH, first_kept)
        async with unit_of_work(ctx) as uow:
            deleted += await repository.delete_below(uow.session, below=below)
    return deleted


async def replay(
    ctx: AppContext, *, user_id: int, supervisor: bool, after: int, upto: int
) -> AsyncIterator[tuple[int, str]]:
    """(seq, payload) of the user's events with after < seq <= upto, in order, read in batches."""
    while after < upto:
        # A short read per batch: the connection is not held while the client reads.
        async with ctx.reading() as session:
            rows = await repository.for_user(
                session, user_id=user_id, supervisor=supervisor, after=after, upto=upto, limit=BATCH
            )
        for seq, payload in rows:
            yield seq, payload
        if len(rows) < BATCH:
            return
        after = rows[-1][0]


class Hub:
    def __init__(self, ctx: AppContext, *, queue_size: int = QUEUE_SIZE) -> None:
        self._ctx = ctx
        self._queue_size = queue_size
        self._cursor = 0
        # Each user's connections, oldest first (a dict as an ordered set).
        self._by_user: dict[int, dict[Connection, None]] = {}
        self._supervisors: set[Connection] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Events this instance committed that the other instances have not been told of yet, and
        # the newest seq it has told them of.
        self._to_announce: list[Committed] = []
        self._announced = 0
        self._announce_wake = asyncio.Event()
        # Reads of the outbox by the live stream (replays aside): what the bus spares.
        self.outbox_reads = 0
        # Checks of a signed-out user's sockets under way (kept, so they are not collected).
        self._checks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # Events before now are the replay's business, not the live stream's.
        async with self._ctx.reading() as session:
            self._cursor = await repository.latest_seq(session)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="hub-reader"),
            asyncio.create_task(self._prune_loop(), name="hub-pruner"),
        ]
        if self._ctx.bus is not None:
            self._tasks.append(asyncio.create_task(self._announce_loop(), name="hub-announcer"))

    async def stop(self) -> None:
        for conn in [c for conns in self._by_user.values() for c in conns]:
            conn.close(RESTARTING)  # the client reconnects, elsewhere if need be
        tasks = [*self._tasks, *self._checks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    @property
    def sent_seq(self) -> int:
        """The newest seq this hub has fanned out to its sockets (the metrics' outbox lag)."""
        return self._cursor

    @property
    def connection_count(self) -> int:
        return sum(len(conns) for conns in self._by_user.values())

    def connections_of(self, user_id: int) -> int:
        return len(self._by_user.get(user_id, ()))

    def register(
        self,
        user_id: int,
        *,
        supervisor: bool,
        token_version: int = 0,
        expires_at: float | None = None,
    ) -> Connection:
        """From now on, every event this hub reads for the user is queued to the connection,
        until its token expires (expires_at, seconds since the epoch) or is revoked."""
        conn = Connection(
            user_id, supervisor=supervisor, queue_size=self._queue_size, token_version=token_version
        )
        self._by_user.setdefault(user_id, {})[conn] = None
        if supervisor:
            self._supervisors.add(conn)
        if expires_at is not None:
            conn.expire_at(expires_at)
        return conn

    def admit(self, conn: Connection) -> None:
        """The connection's token checked out: close the user's oldest sockets beyond the cap
        (TELLONCE_WS_PER_USER). The newest wins, as the tab in front of the user is the newest,
        while an old one may be a tab left open elsewhere or a connection already dead."""
        conns = self._by_user.get(conn.user_id, {})
        for old in list(conns)[: max(0, len(conns) - self._ctx.settings.ws_per_user)]:
            if old is not conn:
                old.close(REPLACED)
                self.unregister(old)

    def unregister(self, conn: Connection) -> None:
        conns = self._by_user.get(conn.user_id)
        if conns is not None:
            conns.pop(conn, None)
            if not conns:
                del self._by_user[conn.user_id]
        self._supervisors.discard(conn)

    def announce(self, committed: list[Committed]) -> None:
        """Events this instance has just committed: tell the other instances' hubs.

        Published by one task rather than by each request: a request does not wait for Redis,
        and while one publish is on its way the commits after it go out as one message.
        """
        if committed:
            self._to_announce.extend(committed)
            self._announce_wake.set()

    async def _announce_loop(self) -> None:
        bus = self._ctx.bus
        assert bus is not None
        while True:
            await self._announce_wake.wait()
            self._announce_wake.clear()
            events, self._to_announce = self._to_announce, []
            events = [e for e in events if e[0] > self._announced]
            if not events:
                continue
            events.sort(key=lambda e: e[0])
            top = events[-1][0]
            try:
                await bus.publish(CHANNEL, bus_message(events) if bus.shared else str(top))
            except Exception:
                # The other hubs read the outbox at their next poll anyway.
                log.exception("hub: announcing seq %s failed", top)
            self._announced = top

    async def _read_loop(self) -> None:
        bus = self._ctx.bus
        if bus is None:
            await self._poll_forever()
            return
        async with bus.subscribe(CHANNEL) as messages:
            pump = asyncio.create_task(self._pump(messages), name="hub-pump")
            try:
                await self._poll_forever()
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    async def _pump(self, messages: AsyncIterator[str]) -> None:
        async for message in messages:
            top, events = parse_bus_message(message)
            # Every instance hears every commit, its own too: nothing to do when already there.
            if top is not None and top <= self._cursor:
                continue
            if events:
                # The events came with the message: no read, unless one is missing before them.
                self.deliver(events)
            else:
                self._wake.set()

    async def _poll_forever(self) -> None:
        interval = self._ctx.settings.poll_interval_s
        while True:
            # The timeout is the safety poll: a lost bus message only delays by this much.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._catch_up()
            except Exception:
                log.exception("hub: reading events failed; trying again at the next poll")
                await asyncio.sleep(interval)

    async def _catch_up(self) -> None:
        while True:
            self.outbox_reads += 1
            async with self._ctx.reading() as session:
                rows = await repository.newer(session, after=self._cursor, limit=BATCH)
            for seq, payload, user_id, to_supervisors in rows:
                # Events of this instance may have been delivered while the read was under way.
                if seq <= self._cursor:
                    continue
                self._fan_out(seq, payload, user_id, to_supervisors)
                self._cursor = seq
            if len(rows) < BATCH:
                return

    def deliver(self, events: list[Committed]) -> None:
        """Committed events, in seq order (this instance's, or another's off the bus): fanned
        out without a read.

        Only when they follow on from what this hub has fanned out: then no event can have been
        skipped. Otherwise (another instance's commit, or another local one, came in between)
        the reader catches up from the outbox, which holds them all.
        """
        if not events or events[-1][0] <= self._cursor:
            return
        first = next(i for i, e in enumerate(events) if e[0] > self._cursor)
        if events[first][0] != self._cursor + 1:
            self._wake.set()
            return
        for seq, payload, user_id, to_supervisors in events[first:]:
            if seq != self._cursor + 1:
                self._wake.set()
                return
            self._fan_out(seq, payload, user_id, to_supervisors)
            self._cursor = seq

    def _fan_out(self, seq: int, payload: str, user_id: int | None, to_supervisors: bool) -> None:
        # The same payload string for every recipient; no await here, so registration and
        # fan-out never interleave within one event.
        targets = list(self._by_user.get(user_id, ())) if user_id is not None else []
        if to_supervisors:
            targets.extend(c for c in self._supervisors if c.user_id != user_id)
        for conn in targets:
            if not conn.put((seq, payload)):
                self.unregister(conn)
        if user_id in self._by_user and is_type(payload, SIGNED_OUT):
            check = asyncio.create_task(self._close_revoked(user_id), name="hub-revoked")
            self._checks.add(check)
            check.add_done_callback(self._checks.discard)

    async def _close_revoked(self, user_id: int) -> None:
        """Close the user's sockets whose token the user row no longer honours: those of before
        the sign-out or disable, not one opened since with a new sign-in."""
        try:
            async with self._ctx.reading() as session:
                user = await users.get(session, user_id)
        except Exception:
            # Closed all the same, as a server error: each reconnect has its token checked anew.
            log.exception("hub: reading user %s after a sign-out failed", user_id)
            for conn in list(self._by_user.get(user_id, ())):
                conn.close(SERVER_ERROR)
                self.unregister(conn)
            return
        for conn in list(self._by_user.get(user_id, ())):
            if user is None or not accepts(user, conn.token_version):
                conn.close(UNAUTHORIZED)
                self.unregister(conn)

    async def _prune_loop(self) -> None:
        while True:
            try:
                await prune(self._ctx, now=utcnow())
                await audit.prune(self._ctx, now=utcnow())
            except Exception:
                log.exception("hub: pruning old events failed")
            await asyncio.sleep(PRUNE_EVERY_S)


def bus_message(events: list[Committed]) -> str:
    """What the bus carries for committed events (in seq order): "<newest seq> <their JSON>",
    or the newest seq alone when they are too large to carry."""
    top = events[-1][0]
    body = json.dumps(events, separators=(",", ":"))
    return str(top) if len(body) > MESSAGE_MAX_CHARS else f"{top} {body}"


def parse_bus_message(message: str) -> tuple[int | None, list[Committed]]:
    """(newest seq, the events carried): (None, []) for a message this hub cannot read, which
    only wakes its reader up; a bare seq (an older instance's message) carries no events."""
    head, _, body = message.partition(" ")
    try:
        top = int(head)
    except ValueError:
        return None, []
    if not body:
        return top, []
    try:
        raw = json.loads(body)
        events: list[Committed] = [
            (seq, payload, user, supervisors) for seq, payload, user, supervisors in raw
        ]
    except (ValueError, TypeError):
        return top, []
    for seq, payload, user, supervisors in events:
        # Sent to sockets as they are: anything but what an instance sends is only a wake-up.
        if not (
            type(seq) is int
            and isinstance(payload, str)
            and (user is None or type(user) is int)
            and type(supervisors) is bool
        ):
            return top, []
    return top, events
