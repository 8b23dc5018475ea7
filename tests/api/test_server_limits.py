"""The server's own limits, tried as an attacker would against a live server: bodies too large or
too slow, headers that never end or never stop, and more connections than it will hold.

Raw sockets where a client library would hide what is tried (a half-sent request, a lie in
Content-Length); each exchange reads until the server closes the connection, within a deadline,
so a server that holds on for ever fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import DEADLINE, Api, LiveServer, Ws

# The limits hold in front of the app, whatever the database behind it.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

MiB = 1024 * 1024
# Short, so that the tests wait for them; the defaults are in app/config.py and docs/DEPLOY.md.
HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0


@pytest.fixture(autouse=True)
def short_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused connection is read and dropped for LINGER_S before it closes; the exchanges
    here read until it closes, and how long it lingers is not what they test."""
    import app.server

    monkeypatch.setattr(app.server, "LINGER_S", HEADER_TIMEOUT_S)


@pytest.fixture
def server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    return server_factory(header_timeout_s=HEADER_TIMEOUT_S, body_timeout_s=BODY_TIMEOUT_S)


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=DEADLINE) as client:
        yield client


def port_of(live: LiveServer) -> int:
    return int(live.base_url.rsplit(":", 1)[1])


async def exchange(live: LiveServer, data: bytes) -> bytes:
    """Send data on a new connection and go silent; all the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(live))
    try:
        if data:
            writer.write(data)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), DEADLINE)
    finally:
        writer.close()


def parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, json.loads(body)


def peak_rss_reset() -> int:
    """Start measuring this process's peak memory (the server runs in it, on a thread); the
    memory it holds now."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("the peak memory of a process can be reset only on Linux")
    return peak_rss_bytes()


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


async def test_a_100_mb_body_without_a_token_is_refused_with_413_before_it_is_read(
    http: httpx.AsyncClient,
) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        # One 64 KiB chunk, sent 1600 times: the test itself never holds the 100 MB.
        nonlocal sent
        chunk = b"x" * (64 * 1024)
        for _ in range(1600):
            sent += len(chunk)
            yield chunk

    before = peak_rss_reset()
    r = await http.post("/api/calls", content=body(), headers={"Content-Type": "application/json"})
    grown = peak_rss_bytes() - before
    # 413, not the 401 the missing token would get: refused before authentication.
    assert r.status_code == 413, r.text
    assert r.json() == {"detail": f"the request body is larger than {MiB} bytes"}
    assert sent > MiB
    # Without the limit the body was read whole, and copied, before the 401.
    assert grown < 32 * MiB, f"the server's memory grew by {grown / MiB:.0f} MiB"


async def test_a_declared_length_over_the_limit_is_refused_before_any_of_the_body(
    server: LiveServer,
) -> None:
    raw = await exchange(
        server,
        b"POST /api/calls HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 104857600\r\n\r\n",
    )
    status, headers, body = parse(raw)
    assert status == 413
    assert body == {"detail": f"the request body is larger than {MiB} bytes"}
    assert headers["x-content-type-options"] == "nosniff"


async def test_a_body_shorter_than_its_content_length_gets_408_and_the_connection_ends(
    server: LiveServer,
) -> None:
    # The lie: 100 bytes said, one sent, then silence. The IVR key is right: it is not the
    # authentication that answers.
    raw = await exchange(
        server,
        f"POST /api/calls HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {server.ivr_key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode(),
    )
    status, _, body = parse(raw)
    assert status == 408
    assert body == {"detail": f"the request body did not arrive within {BODY_TIMEOUT_S:g} s"}


async def test_a_body_longer_than_its_content_length_is_refused_with_400(
    server: LiveServer,
) -> None:
    # The lie the other way: what follows the declared length is read as the next request,
    # and it is none.
    raw = await exchange(
        server,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}not a request\r\n\r\n",
    )
    status, headers, body = parse(raw[raw.index(b"HTTP/1.1 400 ") :])
    assert status == 400
    assert body == {"detail": "invalid HTTP request"}
    assert headers["connection"] == "close"


async def test_headers_that_never_end_get_408_and_a_silent_connection_is_closed(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    raw = await exchange(server, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    status, headers, body = parse(raw)
    assert status == 408
    assert body == {"detail": f"the request headers did not arrive within {HEADER_TIMEOUT_S:g} s"}
    assert headers["connection"] == "close"
    # A connection that says nothing at all is closed without a word: a browser's spare
    # connection must not find an answer waiting for its next request.
    assert await exchange(server, b"") == b""
    assert (await http.get("/healthz")).status_code == 200


async def test_headers_over_the_size_limit_get_431(server: LiveServer) -> None:
    huge = b"a" * (server.settings.max_header_bytes + 1)
    raw = await exchange(
        server, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + huge + b"\r\n\r\n"
    )
    status, _, body = parse(raw)
    assert status == 431
    assert body == {
        "detail": f"the request headers are larger than {server.settings.max_header_bytes} bytes"
    }


async def test_a_request_that_is_no_http_gets_400_in_the_apis_shape(server: LiveServer) -> None:
    status, headers, body = parse(await exchange(server, b"\x00\x01 hello\r\n\r\n"))
    assert status == 400
    assert body == {"detail": "invalid HTTP request"}
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


async def test_at_the_connection_limit_the_longest_idle_connection_makes_room(
    server_factory: Callable[..., LiveServer],
) -> None:
    # Timeouts long enough that they are not what frees room here.
    live = server_factory(max_connections=4, header_timeout_s=60)
    idle = [await asyncio.open_connection("127.0.0.1", port_of(live)) for _ in range(4)]
    try:
        # The server has accepted them all once a request on a fifth is answered.
        async with httpx.AsyncClient(base_url=live.base_url, timeout=DEADLINE) as client:
            r = await client.get("/healthz")
            assert r.status_code == 200
            # The oldest idle connection was closed, without a word, to make room.
            oldest = idle[0][0]
            assert await asyncio.wait_for(oldest.read(), DEADLINE) == b""
            # And so on: each new client finds room.
            async with httpx.AsyncClient(base_url=live.base_url, timeout=DEADLINE) as other:
                assert (await other.get("/healthz")).status_code == 200
            assert await asyncio.wait_for(idle[1][0].read(), DEADLINE) == b""
            # The newer idle ones are still open: they are closed only at their own deadline.
            assert not idle[3][0].at_eof()
    finally:
        for _, writer in idle:
            writer.close()


async def test_when_no_connection_can_make_room_a_new_one_gets_503_until_one_ends(
    server_factory: Callable[..., LiveServer],
) -> None:
    live = server_factory(max_connections=3)
    api = Api(live)
    sockets: list[Ws] = []
    try:
        for username in ("alice", "bob", "carol"):
            await api.login(username)
        await api.http.aclose()  # its idle keep-alive would be closed to make room anyway
        for username in ("alice", "bob", "carol"):
            sockets.append(await Ws(live.ws_url, api.tokens[username]).connect())
        # Three websockets: nothing to close without cutting someone off.
        async with httpx.AsyncClient(base_url=live.base_url, timeout=DEADLINE) as client:
            r = await client.get("/healthz")
            assert r.status_code == 503
            assert r.headers["retry-after"] == "1"
            assert r.json() == {"detail": "the server is at its connection limit; try again"}
        await sockets.pop().close()
        async with httpx.AsyncClient(base_url=live.base_url, timeout=DEADLINE) as client:
            deadline = asyncio.get_running_loop().time() + DEADLINE
            # The server learns of the close asynchronously: ask until it has room again.
            while (r := await client.get("/healthz")).status_code == 503:
                assert asyncio.get_running_loop().time() < deadline, "no room after a close"
            assert r.status_code == 200
    finally:
        for ws in sockets:
            await ws.close()


async def test_a_connection_answered_before_its_body_was_sent_carries_the_next_request(
    server: LiveServer,
) -> None:
    """A refusal that needs no body (413 here, said from Content-Length alone) is answered as soon
    as the headers are in; the body still on its way is read and dropped, and the connection,
    whose answer did not say it would close, serves the client's next request as keep-alive
    promises."""
    body = b'{"text": "' + b"n" * (2 * MiB) + b'"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
    try:
        writer.write(
            b"POST /api/calls/1/notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert b"connection: close" not in head.lower()
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await asyncio.wait_for(reader.readexactly(length), DEADLINE)
        writer.write(body)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        writer.close()
