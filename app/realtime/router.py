"""GET /ws: authenticate, replay what the client missed, then stream its live events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.auth.service import TokenClaims, accepts, read_token
from app.config import Settings
from app.context import AppContext
from app.realtime import repository
from app.realtime.hub import (
    ORIGIN_REFUSED,
    SERVER_ERROR,
    TOO_BIG,
    TOO_MANY_MESSAGES,
    TOO_SLOW,
    UNAUTHORIZED,
    Connection,
    replay,
)
from app.users import repository as users
from app.users.models import Role

log = logging.getLogger("tellonce.ws")

router = APIRouter()

AUTH_TIMEOUT_S = 5.0
# Long enough for a briefly stalled client to read its 4408; it then resumes with last_seq.
CLOSE_TIMEOUT_S = 10.0
_PONG = '{"type":"pong"}'
_DEFAULT_PORTS = {"http": 80, "https": 443}


class AuthMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["auth"]
    token: Annotated[str, Field(min_length=1, max_length=4096)]
    last_seq: Annotated[int, Field(ge=0)] | None = None


@router.websocket("/ws")
async def events_socket(websocket: WebSocket) -> None:
    ctx: AppContext = websocket.app.state.ctx
    hub = ctx.hub
    assert hub is not None, "the lifespan starts the hub"
    await websocket.accept()
    if not origin_allowed(
        websocket.headers.get("origin"), websocket.headers.get("host"), ctx.settings
    ):
        # Accepted first, so that the page is told why (a refused handshake is only a 1006).
        await _close(websocket, ORIGIN_REFUSED)
        return
    auth = await _authenticate(websocket, ctx.settings)
    if auth is None:
        await _close(websocket, UNAUTHORIZED)
        return
    claims, last_seq = auth
    # Registered before the user and the latest seq are read: an event committed after that
    # read is then surely queued, and a sign-out committed after it surely closes this socket.
    conn = hub.register(
        claims.user_id,
        supervisor=claims.role == Role.supervisor,
        token_version=claims.version,
        expires_at=claims.expires_at,
    )
    try:
        latest = await _check(ctx, conn)
    except Exception:
        # The database did not answer: the client reconnects, and is checked then.
        log.exception("ws: checking the token of user %s failed", conn.user_id)
        conn.close(SERVER_ERROR)
        latest = None
    try:
        if latest is None:
            conn.close(UNAUTHORIZED)  # unless closed already
        else:
            hub.admit(conn)
            # Two coroutines per socket and no more, as thousands are open: this handler sends,
            # one task receives. Either ending stops the other (conn.stop(), or a cancel).
            receiver = asyncio.create_task(_receiver(websocket, conn, ctx.settings))
            try:
                await _sender(websocket, ctx, conn, last_seq, latest)
            finally:
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiver
    finally:
        conn.stop()
        hub.unregister(conn)
    if conn.close_code is not None:
        await _close(websocket, conn.close_code)


def origin_allowed(origin: str | None, host: str | None, settings: Settings) -> bool:
    """Whether a page of this origin may open the socket: one of TELLONCE_ALLOWED_ORIGINS, or by
    default the server's own (the host the client asked for, over http or https: a proxy that
    ends TLS may not say which). No Origin at all is no browser: its token alone decides."""
    if origin is None:
        return True
    origin = origin.strip().lower().rstrip("/")
    allowed = settings.allowed_origin_set
    if allowed:
        return origin in allowed
    if not host:
        return False
    try:
        page = urlsplit(origin)
        server = urlsplit(f"//{host.strip().lower()}")
        default = _DEFAULT_PORTS.get(page.scheme)
        if default is None or page.hostname is None or page.hostname != server.hostname:
            return False
        return (page.port or default) == (server.port or default)
    except ValueError:  # a port that is no number
        return False


class _Auth(NamedTuple):
    claims: TokenClaims
    last_seq: int | None


async def _authenticate(websocket: WebSocket, settings: Settings) -> _Auth | None:
    """What the first message's token says, or None: the socket is closed with 4401. The
    token's signature and expiry only; the user row is read once the socket is registered."""
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            message = await websocket.receive()
    except TimeoutError:
        return None
    text = message.get("text") if message["type"] == "websocket.receive" else None
    if not isinstance(text, str) or len(text) > settings.ws_max_message_bytes:
        return None
    try:
        auth = AuthMessage.model_validate_json(text)
    except ValidationError:
        return None
    secret = settings.secret_key
    claims = None if secret is None else read_token(secret.get_secret_value(), auth.token)
    return None if claims is None else _Auth(claims, auth.last_seq)


async def _check(ctx: AppContext, conn: Connection) -> int | None:
    """The latest seq, if the user still honours the token (not signed out or disabled since,
    and of the role it says); else None. One short read, kept out of the sender's frame."""
    async with ctx.reading() as session:
        user = await users.get(session, conn.user_id)
        latest = await repository.latest_seq(session)
    if user is None or not accepts(user, conn.token_version):
        return None
    if (user.role == Role.supervisor) != conn.supervisor:
        return None
    return latest


async def _receiver(websocket: WebSocket, conn: Connection, settings: Settings) -> None:
    """Pings get a pong; anything else is ignored, up to TELLONCE_WS_MESSAGES_PER_S messages in
    a second (more closes with 4429) of TELLONCE_WS_MAX_MESSAGE_BYTES each (more: 1009)."""
    loop = asyncio.get_running_loop()
    per_second = settings.ws_messages_per_s
    max_size = settings.ws_max_message_bytes
    window_ends, count = 0.0, 0
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            now = loop.time()
            if now >= window_ends:
                window_ends, count = now + 1.0, 0
            count += 1
            if count > per_second:
                conn.close(TOO_MANY_MESSAGES)
                return
            text, data = message.get("text"), message.get("bytes")
            if len(text if text is not None else data or b"") > max_size:
                # The server's own limit (uvicorn's ws_max_size) refuses it before it is read;
                # this one holds under any other server too.
                conn.close(TOO_BIG)
                return
            if isinstance(text, str) and _is_ping(text):
                conn.put((None, _PONG))
    except (WebSocketDisconnect, OSError, RuntimeError):
        # Gone, or (RuntimeError) the handler has already closed the socket: nothing to read.
        return
    finally:
        conn.stop()


def _is_ping(text: str) -> bool:
    try:
        message = json.loads(text)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"


async def _sender(
    websocket: WebSocket, ctx: AppContext, conn: Connection, last_seq: int | None, latest: int
) -> None:
    """Each send has TELLONCE_WS_SEND_TIMEOUT_S: a client that takes nothing for that long is
    closed with 4408, instead of holding this coroutine, and its queue, for ever."""
    timeout = ctx.settings.ws_send_timeout_s
    try:
        if last_seq is not None:
            events = replay(
                ctx, user_id=conn.user_id, supervisor=conn.supervisor, after=last_seq, upto=latest
            )
            async for _, payload in events:
                async with asyncio.timeout(timeout):
                    await websocket.send_text(payload)
        async with asyncio.timeout(timeout):
            await websocket.send_text(json.dumps({"type": "ready", "seq": latest}))
        sent = latest
        while (item := await conn.get()) is not None:
            seq, text = item
            if seq is not None:
                # Queued before ready too: what the replay or an earlier read already covered.
                if seq <= sent:
                    continue
                sent = seq
            async with asyncio.timeout(timeout):
                await websocket.send_text(text)
    except TimeoutError:
        conn.close(TOO_SLOW)
    except (WebSocketDisconnect, OSError):
        pass
    except Exception:
        log.exception("ws: sending to user %s failed", conn.user_id)
        conn.close(SERVER_ERROR)
    finally:
        conn.stop()


async def _close(websocket: WebSocket, code: int) -> None:
    # The client may be gone or not reading; never wait on it for long.
    with anyio.move_on_after(CLOSE_TIMEOUT_S), contextlib.suppress(Exception):
        await websocket.close(code)
