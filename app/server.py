"""How `tellonce serve` runs uvicorn: limits on connections, request headers and idle time, set
for a server exposed to clients directly, with no proxy in front (docs/DEPLOY.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from http import HTTPStatus
from typing import Any, ClassVar, Literal

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings
from app.headers import SECURITY_HEADERS

log = logging.getLogger("tellonce")

# Descriptors kept for what is not a client's connection: the database pool, Redis, files.
OPEN_FILES_RESERVE = 256
# Connections the kernel holds for the server before it accepts them (capped by
# net.core.somaxconn): room for every console reconnecting at once after a restart.
BACKLOG = 4096
# On SIGTERM, requests under way get this long to finish before they are cancelled.
GRACEFUL_SHUTDOWN_S = 30

# After a refusal, the rest of what the client sends is read and dropped for at most this
# long before the connection closes: closing on unread data would make the kernel reset the
# connection, and the client could lose the answer before reading it.
LINGER_S = 5.0

# Where the connection's current request is: its headers, its body, received whole; or, once
# refused, being read and dropped until the connection closes.
State = Literal["headers", "body", "received", "lingering"]
RETRY = (("Retry-After", "1"),)


def raw_response(status: int, detail: str, *headers: tuple[str, str]) -> bytes:
    """An HTTP/1.1 answer written straight to a connection that has no request under way, as
    the app would have answered: JSON {"detail"}, security headers, and the connection closed."""
    body = json.dumps({"detail": detail}).encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in (*SECURITY_HEADERS, *headers)),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ConnectionGuard:
    """The open connections of one server, and a cap on them.

    At the cap, room is made by closing a refused connection still being drained, else the one
    idle the longest (still sending a request, or waiting between two): a flood of idle or slow
    connections can never keep a new client (or a health check) out. Only when every connection
    is a websocket or a request being answered is a new one refused, with 503.
    """

    def __init__(self, *, limit: int, header_timeout_s: float, max_header_bytes: int) -> None:
        self.limit = limit
        self.header_timeout_s = header_timeout_s
        self.max_header_bytes = max_header_bytes
        self.http: set[GuardedHttpProtocol] = set()
        # The connections that can be closed without cutting off an answer, oldest first (a
        # dict keeps its order): refused ones being drained, then those with no request being
        # answered.
        self.lingering: dict[GuardedHttpProtocol, None] = {}
        self.idle: dict[GuardedHttpProtocol, None] = {}
        self.websockets = 0

    @property
    def open(self) -> int:
        return len(self.http) + self.websockets

    def admit(self, protocol: GuardedHttpProtocol) -> bool:
        """Count a new connection; whether there is room to serve it. One that is refused
        lingers, counted, until its answer is read or the next new connection needs its room."""
        while self.open >= self.limit:
            spare = self.lingering or self.idle
            if not spare:
                self.http.add(protocol)
                return False
            next(iter(spare)).drop()
        self.http.add(protocol)
        return True

    def forget(self, protocol: GuardedHttpProtocol) -> None:
        self.http.discard(protocol)
        self.lingering.pop(protocol, None)
        self.idle.pop(protocol, None)

    def protocol_class(self) -> type[asyncio.Protocol]:
        """uvicorn's httptools protocol, bound to this guard (uvicorn's `http` option)."""
        return type("TellonceHttpProtocol", (GuardedHttpProtocol,), {"guard": self})

    def count_websockets(self, app: ASGIApp) -> ASGIApp:
        """The app, counting its open websockets: after the upgrade they are no HTTP connection
        the protocol sees any more, but they hold a descriptor all the same."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "websocket":
                await app(scope, receive, send)
                return
            self.websockets += 1
            try:
                await app(scope, receive, send)
            finally:
                self.websockets -= 1

        return counted


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with what it lacks for direct exposure: a deadline for a request's
    headers, counted from the connection's opening (or the first byte of a later request), a
    bound on their size, and a bounded drain of what a client still sends after its refusal.
    uvicorn's keep-alive timer only runs after a first answer and is reset by every byte, and
    httptools keeps headers of any size; a body's own limits are BodyLimit's (app/limits.py).

    Only public methods are overridden (asyncio.Protocol's, httptools' parser callbacks, and
    uvicorn's on_response_complete and send_400_response), each calling uvicorn's own; the
    guard keeps its state in attributes of its own.
    """

    guard: ClassVar[ConnectionGuard]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard_transport = transport
        self._guard_timer: asyncio.TimerHandle | None = None
        self._guard_state: State = "received"
        self._guard_header_bytes = 0
        # Once a request has reached the app, an answer of the guard's own could cut into one
        # of the app's: later refusals close the connection without a word.
        self._guard_served = False
        self._guard_answered = False
        if not self.guard.admit(self):
            detail = "the server is at its connection limit; try again"
            transport.write(raw_response(503, detail, *RETRY))
            self._linger()
            return
        self._start_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._guard_state == "lingering" or self._guard_transport.is_closing():
            return
        if self._guard_state == "received":
            self._start_request()
        if self._guard_state == "headers":
            room = self.guard.max_header_bytes - self._guard_header_bytes
            if len(data) > room:
                # What fits is parsed; headers that do not end within it are refused before
                # the parser holds more of them.
                head, rest = data[:room], data[room:]
                self._guard_header_bytes += len(head)
                if not self._feed(head):
                    return
                if self._guard_state == "headers":
                    limit = self.guard.max_header_bytes
                    self._refuse(431, f"the request headers are larger than {limit} bytes")
                    return
                self.data_received(rest)
                return
            self._guard_header_bytes += len(data)
        self._feed(data)

    def on_headers_complete(self) -> None:
        self._guard_state = "body"
        self._guard_served = True
        self._cancel_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._guard_state = "received"
        self.guard.idle.pop(self, None)  # being answered
        if self._guard_answered:
            # The rest of a body answered early has come: the connection is idle, as usual.
            self._cancel_timer()
            self.guard.idle[self] = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._guard_transport.is_closing() or self not in self.guard.http:
            return
        self._guard_answered = True
        if self._guard_state == "body":
            # Answered before its body was all sent (a 401 before the body was read, BodyLimit's
            # 413 or 408): uvicorn reads and drops the rest, and the connection then carries the
            # client's next request as usual, since the answer did not say it would close. A
            # rest that does not come within LINGER_S ends the connection.
            self._cancel_timer()
            self._guard_timer = asyncio.get_running_loop().call_later(LINGER_S, self.drop)
        elif self._guard_state == "received":
            self.guard.idle[self] = None  # kept alive for the next request

    def send_400_response(self, msg: str) -> None:
        # uvicorn's own answer to bytes that are no HTTP request, in the app's shape.
        self._forget()
        self._guard_transport.write(raw_response(400, "invalid HTTP request"))
        self._guard_transport.close()

    def drop(self) -> None:
        """Close the connection at once, without a word."""
        self._forget()
        self._guard_transport.close()

    def _refuse(self, status: int, detail: str) -> None:
        """Answer status and detail, then drain and close. A connection that has sent nothing,
        or whose earlier request reached the app, is closed without a word: a browser opens
        spare connections ahead of need and would take an answer there for its next request's,
        and an answer of the guard's own could cut into one of the app's."""
        if self._guard_served or self._guard_header_bytes == 0:
            self.drop()
            return
        self._guard_transport.write(raw_response(status, detail))
        self._linger()

    def _linger(self) -> None:
        self._guard_state = "lingering"
        self._cancel_timer()
        self.guard.idle.pop(self, None)
        self.guard.lingering[self] = None
        if self._guard_transport.can_write_eof():
            self._guard_transport.write_eof()  # the client reads the answer, then its end
        self._guard_timer = asyncio.get_running_loop().call_later(LINGER_S, self.drop)

    def _start_request(self) -> None:
        self._guard_state = "headers"
        self._guard_answered = False
        self._guard_header_bytes = 0
        self.guard.idle.pop(self, None)
        self.guard.idle[self] = None
        self._cancel_timer()
        self._guard_timer = asyncio.get_running_loop().call_later(
            self.guard.header_timeout_s, self._headers_late
        )

    def _headers_late(self) -> None:
        self._guard_timer = None
        timeout = self.guard.header_timeout_s
        self._refuse(408, f"the request headers did not arrive within {timeout:g} s")

    def _feed(self, data: bytes) -> bool:
        """Parse data as uvicorn does; whether this protocol still serves the connection (not
        closed, not upgraded to a websocket)."""
        super().data_received(data)
        if self._guard_transport.get_protocol() is not self:
            self._forget()  # a websocket now, counted by ConnectionGuard.count_websockets
            return False
        return not self._guard_transport.is_closing()

    def _cancel_timer(self) -> None:
        if self._guard_timer is not None:
            self._guard_timer.cancel()
            self._guard_timer = None

    def _forget(self) -> None:
        self._cancel_timer()
        self.guard.forget(self)


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open descriptors to its hard limit, as far as the
    system lets it; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if wanted <= soft:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted


def connection_limit(settings: Settings, open_files: int) -> int:
    """TELLONCE_MAX_CONNECTIONS, lowered to what the descriptor limit leaves room for: past it
    the server would fail to accept (EMFILE) instead of answering 503."""
    room = max(open_files - OPEN_FILES_RESERVE, open_files // 2)
    if room < settings.max_connections:
        log.warning(
            "tellonce: the limit on open files (ulimit -n) is %d: at most %d connections instead "
            "of TELLONCE_MAX_CONNECTIONS=%d; raise it to %d or more (docs/DEPLOY.md)",
            open_files,
            room,
            settings.max_connections,
            settings.max_connections + OPEN_FILES_RESERVE,
        )
        return room
    return settings.max_connections


def server_config(app: ASGIApp, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for the app: `tellonce serve`'s, and the tests' live servers'."""
    guard = ConnectionGuard(
        limit=connection_limit(settings, raise_open_files_limit()),
        header_timeout_s=settings.header_timeout_s,
        max_header_bytes=settings.max_header_bytes,
    )
    return uvicorn.Config(
        guard.count_websockets(app),
        http=guard.protocol_class(),
        timeout_keep_alive=settings.keep_alive_s,
        backlog=BACKLOG,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        # A larger message is refused (1009) before it is buffered whole, not after.
        ws_max_size=settings.ws_max_message_bytes,
        **options,
    )
