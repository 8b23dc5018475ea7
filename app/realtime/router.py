"""GET /ws: authenticate, replay what the client missed, then stream its live events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated, Literal, NamedTuple

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.auth.service import decode_token
from app.context import AppContext
from app.realtime import repository
from app.realtime.hub import Connection, replay
from app.users import repository as users
from app.users.models import Role

log = logging.getLogger("tellonce.ws")

router = APIRouter()

AUTH_TIMEOUT_S = 5.0
# Long enough for a briefly stalled client to read its 4408; it then resumes with last_seq.
CLOSE_TIMEOUT_S = 10.0
UNAUTHORIZED = 4401
TOO_SLOW = 4408
_PONG = '{"type":"pong"}'


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
    auth = await _authenticate(websocket, ctx)
    if auth is None:
        await _close(websocket, UNAUTHORIZED)
        return
    user_id, supervisor, last_seq = auth
    # Registered before latest is read: an event committed after that read is then surely queued.
    conn = hub.register(user_id, supervisor=supervisor)
    # Two coroutines per socket and no more, as thousands are open: this handler sends, one
    # task receives. Either ending stops the other (conn.stop(), or cancelling the receiver).
    receiver = asyncio.create_task(_receiver(websocket, conn))
    try:
        await _sender(websocket, ctx, conn, last_seq)
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
        hub.unregister(conn)
    if conn.close_code is not None:
        await _close(websocket, conn.close_code)


class _Identity(NamedTuple):
    user_id: int
    supervisor: bool
    last_seq: int | None


async def _authenticate(websocket: WebSocket, ctx: AppContext) -> _Identity | None:
    """Who the first message says the client is, or None: the socket is closed with 4401."""
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            message = await websocket.receive()
    except TimeoutError:
        return None
    text = message.get("text") if message["type"] == "websocket.receive" else None
    if not isinstance(text, str):
        return None
    try:
        auth = AuthMessage.model_validate_json(text)
    except ValidationError:
        return None
    secret = ctx.settings.secret_key
    user_id = None if secret is None else decode_token(secret.get_secret_value(), auth.token)
    if user_id is None:
        return None
    async with ctx.reading() as session:
        user = await users.get(session, user_id)
    if user is None:
        return None
    return _Identity(user.id, user.role == Role.supervisor, auth.last_seq)


async def _receiver(websocket: WebSocket, conn: Connection) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
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
    websocket: WebSocket, ctx: AppContext, conn: Connection, last_seq: int | None
) -> None:
    try:
        latest = await _latest(ctx)
        if last_seq is not None:
            events = replay(
                ctx, user_id=conn.user_id, supervisor=conn.supervisor, after=last_seq, upto=latest
            )
            async for _, payload in events:
                await websocket.send_text(payload)
        await websocket.send_text(json.dumps({"type": "ready", "seq": latest}))
        sent = latest
        while (item := await conn.get()) is not None:
            seq, text = item
            if seq is not None:
                # Queued before ready too: what the replay or an earlier read already covered.
                if seq <= sent:
                    continue
                sent = seq
            await websocket.send_text(text)
    except (WebSocketDisconnect, OSError):
        pass
    except Exception:
        log.exception("ws: sending to user %s failed", conn.user_id)
        conn.close(1011)
    finally:
        conn.stop()


async def _latest(ctx: AppContext) -> int:
    # A function of its own, so that the long-lived sender keeps no session in its frame.
    async with ctx.reading() as session:
        return await repository.latest_seq(session)


async def _close(websocket: WebSocket, code: int) -> None:
    # The client may be gone or not reading; never wait on it for long.
    with anyio.move_on_after(CLOSE_TIMEOUT_S), contextlib.suppress(Exception):
        await websocket.close(code)
