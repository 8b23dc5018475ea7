"""/ws under abuse: clients that stop reading, too many sockets, big or many messages, foreign
pages, tokens that expire or are revoked while the socket is open."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from app.realtime.hub import QUEUE_SIZE
from app.realtime.router import origin_allowed
from app.users.models import User

from .conftest import DEADLINE_S, Ev, Server, close_code, recv, running


@asynccontextmanager
async def instance(
    settings: Settings, users: dict[str, int], **changes: Any
) -> AsyncIterator[Server]:
    """Another instance on the module's database, with these settings changed."""
    async with running(settings.model_copy(update=changes), users) as server:
        yield server


async def until(condition: Any, what: str, *, within: float = DEADLINE_S) -> None:
    """Wait for a condition of the server's own state, failing at the deadline."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)  # polling the hub's state, with a deadline; nothing to wait on


def port_of(server: Server) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


async def test_a_client_that_stops_reading_is_closed_before_its_queue_is_full(
    settings: Settings, users: dict[str, int]
) -> None:
    """The socket's own send blocks (the client's buffers are full) while the hub's queue for it
    has room: only the send's deadline can tell that the client is gone."""
    async with instance(settings, users, ws_send_timeout_s=1.0) as server:
        boss = server.users["super"]
        # A supervisor's socket whose client reads one message and then nothing: a tiny receive
        # buffer, and a client library that stops reading once it holds one message.
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", port_of(server)))
        slow, _, _ = await server.login("super", sock=raw, max_queue=1, ping_interval=None)
        fast, _, _ = await server.login("super")
        assert server.hub.connections_of(boss) == 2
        blob = base64.b64encode(os.urandom(48_000)).decode()
        sent: list[int] = []
        try:
            # Some 13 MB in all: more than every buffer between the server and the slow client
            # holds, in far fewer events than the queue takes.
            for _ in range(10):
                seqs = await server.emit(*(Ev("call.updated", data={"b": blob}) for _ in range(20)))
                sent += seqs
                assert [(await recv(fast))["seq"] for _ in seqs] == seqs
            assert len(sent) < QUEUE_SIZE // 2

            await until(lambda: server.hub.connections_of(boss) == 1, "the slow socket to close")
            # The other clients are served as before.
            [seq] = await server.emit(Ev("queue.stats"))
            assert (await recv(fast))["seq"] == seq

            # Once the slow client reads again it gets an in-order prefix, then 4408.
            received: list[int] = []
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(DEADLINE_S):
                    while True:
                        received.append(json.loads(await slow.recv())["seq"])
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
            assert received == sent[: len(received)] and len(received) < len(sent)
        finally:
            await slow.close()
            await fast.close()


async def test_a_users_newest_socket_closes_their_oldest_beyond_the_cap(
    settings: Settings, users: dict[str, int]
) -> None:
    async with instance(settings, users, ws_per_user=2) as server:
        alice, bob = server.users["alice"], server.users["bob"]
        first, _, _ = await server.login("alice")
        second, _, _ = await server.login("alice")
        bobs, _, _ = await server.login("bob")
        third, _, _ = await server.login("alice")
        try:
            assert await close_code(first) == 4409
            assert server.hub.connections_of(alice) == 2
            assert server.hub.connections_of(bob) == 1
            # The two newest, and the other user's, go on receiving.
            a, b = await server.emit(Ev("call.updated", alice), Ev("call.updated", bob))
            assert (await recv(second))["seq"] == a
            assert (await recv(third))["seq"] == a
            assert (await recv(bobs))["seq"] == b
        finally:
            for ws in (first, second, third, bobs):
                await ws.close()


async def test_a_message_larger_than_the_limit_closes_with_1009(server: Server) -> None:
    ws, _, _ = await server.login("alice")
    async with ws:
        await ws.send(json.dumps({"type": "ping", "pad": "x" * (17 * 1024)}))
        assert await close_code(ws) == 1009


async def test_too_many_messages_in_a_second_close_with_4429(server: Server) -> None:
    ws, _, _ = await server.login("bob")
    async with ws:
        await ws.send('{"type":"ping"}')
        assert await recv(ws) == {"type": "pong"}
        for _ in range(30):
            await ws.send('{"type":"ping"}')
        assert await close_code(ws) == 4429


async def test_a_page_of_another_origin_is_refused_with_4403(server: Server) -> None:
    port = port_of(server)
    ws = await server.open(origin="http://evil.example")
    assert await close_code(ws) == 4403
    # The server's own pages, and clients that are no browser (no Origin), are let in.
    for options in ({"origin": f"http://127.0.0.1:{port}"}, {}):
        ws, _, _ = await server.login("alice", **options)
        async with ws:
            await ws.send('{"type":"ping"}')
            assert await recv(ws) == {"type": "pong"}


async def test_allowed_origins_are_the_only_origins_let_in(
    settings: Settings, users: dict[str, int]
) -> None:
    async with instance(settings, users, allowed_origins="https://console.example.com") as server:
        own = f"http://127.0.0.1:{port_of(server)}"
        ws = await server.open(origin=own)
        assert await close_code(ws) == 4403
        ws, _, _ = await server.login("alice", origin="https://console.example.com")
        await ws.close()


def test_the_servers_own_origin_is_its_host_over_http_or_https() -> None:
    own = Settings(secret_key=SecretStr("s" * 32), ivr_api_key=SecretStr("k" * 32))
    assert origin_allowed(None, "anything", own)
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000", own)
    # Behind a proxy that ends TLS: the browser's https origin, the proxy's Host.
    assert origin_allowed("https://tellonce.example.com", "tellonce.example.com", own)
    assert origin_allowed("https://Tellonce.example.com:443/", "tellonce.example.com", own)
    assert origin_allowed("http://tellonce.example.com", "tellonce.example.com:80", own)
    for origin, host in [
        ("http://evil.example", "tellonce.example.com"),
        ("https://tellonce.example.com.evil.example", "tellonce.example.com"),
        ("http://127.0.0.1:8001", "127.0.0.1:8000"),
        ("https://tellonce.example.com:8443", "tellonce.example.com"),
        ("null", "tellonce.example.com"),
        ("file://", "tellonce.example.com"),
        ("http://127.0.0.1:port", "127.0.0.1:8000"),
        ("http://127.0.0.1:8000", None),
    ]:
        assert not origin_allowed(origin, host, own), (origin, host)
    listed = own.model_copy(update={"allowed_origins": "https://a.example,http://b.example:8080"})
    assert origin_allowed("https://a.example", "tellonce.example.com", listed)
    assert origin_allowed("http://b.example:8080", "tellonce.example.com", listed)
    assert not origin_allowed("https://tellonce.example.com", "tellonce.example.com", listed)


def test_allowed_origins_must_be_origins() -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        Settings(allowed_origins="https://a.example/path")
    with pytest.raises(ValueError, match="is not an origin"):
        Settings(allowed_origins="a.example")
    parsed = Settings(allowed_origins=" HTTPS://A.example/ , http://b.example:8080")
    assert parsed.allowed_origin_set == {"https://a.example", "http://b.example:8080"}


async def test_a_socket_is_closed_with_4401_when_its_token_expires(server: Server) -> None:
    ws, _, _ = await server.login("alice", token=server.token("alice", ttl_s=2))
    async with ws:
        assert await close_code(ws) == 4401


async def set_token_version(server: Server, who: str, version: int) -> None:
    async with server.ctx.transaction() as session:
        await session.execute(
            update(User).where(User.id == server.users[who]).values(token_version=version)
        )


async def test_a_sign_out_closes_the_sockets_of_before_it_and_not_one_opened_since(
    server: Server,
) -> None:
    alice = server.users["alice"]
    before, _, _ = await server.login("alice")
    try:
        # Signed out (the user's token version moves on), then in again, before this instance
        # hears of the sign-out.
        await set_token_version(server, "alice", 1)
        since, _, _ = await server.login("alice", token=server.token("alice", version=1))
        async with since:
            # An old token is refused from now on.
            stale = await server.open()
            await stale.send(json.dumps({"type": "auth", "token": server.token("alice")}))
            assert await close_code(stale) == 4401

            [seq] = await server.emit(
                Ev("user.signed_out", alice, data={"user_id": alice, "reason": "signed_out"})
            )
            assert await close_code(before) == 4401
            assert (await recv(since))["seq"] == seq
            [seq] = await server.emit(Ev("call.offered", alice))
            assert (await recv(since))["seq"] == seq
    finally:
        await before.close()
        await set_token_version(server, "alice", 0)
