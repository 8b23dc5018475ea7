"""/ws tried as an abuser would, against `tellonce serve --demo` processes; figures, no asserts.

    python3 -m bench.ws_abuse

Each server runs in its own process on a fresh SQLite file in a temp dir. In turn:

1. 40 supervisor sockets whose clients stop reading (a 4 KiB receive buffer, a client library
   that holds one message) and one that reads, while 150 notes of 2000 characters are added to
   one call: each `call.updated` carries every note so far, some 22 MB in all for each socket.
   The server's RSS and open descriptors are printed 7 s later (the send deadline is 5 s), then
   the stalled clients read again and say how they were closed. Run with the server of
   `WT=/work/main` to see the same without the send deadline.
2. 400 sockets opened with one agent's token, 50 at a time: how each ended, and `/healthz`.
3. A 50 MB message after auth, 1000 pings at once, a page of a foreign origin, of its own.
4. A sign-out while the user has 5 sockets on each of two instances of one database: the close
   codes and when each came.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.servers import free_port, rss_kib

SECRET = "abuse-secret-key-0123456789abcdef"
IVR_KEY = "abuse-ivr-key-0123456789"
CODE = os.environ.get("WT", str(Path(__file__).resolve().parent.parent))


def start(db: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    settings = {
        **os.environ,
        "PYTHONPATH": CODE,
        "TELLONCE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "TELLONCE_SECRET_KEY": SECRET,
        "TELLONCE_IVR_API_KEY": IVR_KEY,
        **env,
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--demo"]
    server = subprocess.Popen(
        [*command, "--log-level", "warning"],
        env=settings,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a starting process
    server.kill()
    raise SystemExit("the server did not start")


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def memory(server: subprocess.Popen[bytes]) -> str:
    return f"RSS {rss_kib(server.pid) // 1024} MiB, {descriptors(server.pid)} descriptors"


async def token(base: str, username: str) -> str:
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{base}/api/auth/token", data={"username": username, "password": "demo"}
        )
        return str(r.json()["access_token"])


async def signed_in(port: int, token: str, **options: Any) -> ClientConnection:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws", proxy=None, compression=None, open_timeout=30, **options
    )
    await ws.send(json.dumps({"type": "auth", "token": token, "last_seq": None}))
    while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("type") != "ready":
        pass
    return ws


async def ending(ws: ClientConnection, within: float) -> int | str | None:
    """Read until closed: the close code (None: no close frame), or "open" at the deadline."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return "open"


async def stalled_clients(server: subprocess.Popen[bytes], port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    boss = await token(base, "super")
    stalled = []
    for _ in range(40):
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", port))
        stalled.append(await signed_in(port, boss, sock=raw, max_queue=1, ping_interval=None))
    reader = await signed_in(port, boss)
    got = 0

    async def read() -> None:
        nonlocal got
        async for _ in reader:
            got += 1

    reading = asyncio.create_task(read())
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        ivr = {"Authorization": f"Bearer {IVR_KEY}"}
        r = await http.post("/api/calls", json={"caller_number": "+15550000000"}, headers=ivr)
        call_id = r.json()["id"]
        began = time.monotonic()
        for _ in range(150):
            r = await http.post(
                f"/api/calls/{call_id}/notes",
                json={"text": "n" * 2000},
                headers={"Authorization": f"Bearer {boss}"},
            )
            assert r.status_code == 201, r.text
        took = time.monotonic() - began
        health = (await http.get("/healthz")).status_code
    print(f"  150 notes in {took:.1f} s; /healthz {health}; the reading socket got {got} events")
    await asyncio.sleep(7)  # the send deadline and a margin
    print(f"  7 s later: {memory(server)}")
    began = time.monotonic()
    codes = await asyncio.gather(*(ending(ws, 30) for ws in stalled))
    print(
        f"  the stalled clients read again: {dict(Counter(codes))} in {time.monotonic() - began:.1f} s"
    )
    print(f"  then: {memory(server)}")
    reading.cancel()
    await reader.close()


async def one_token_many_sockets(server: subprocess.Popen[bytes], port: int) -> None:
    alice = await token(f"http://127.0.0.1:{port}", "alice")
    opened: list[ClientConnection] = []
    began = time.monotonic()
    for _ in range(8):
        opened += await asyncio.gather(*(signed_in(port, alice) for _ in range(50)))
    codes = await asyncio.gather(*(ending(ws, 3) for ws in opened))
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code
    print(f"  400 sockets of one token in {time.monotonic() - began:.1f} s: {dict(Counter(codes))}")
    print(f"  /healthz {health}; {memory(server)}")
    for ws in opened:
        await ws.close()


async def what_clients_send(server: subprocess.Popen[bytes], port: int) -> None:
    alice = await token(f"http://127.0.0.1:{port}", "alice")
    ws = await signed_in(port, alice, max_size=None)
    before = memory(server)
    began = time.monotonic()
    with contextlib.suppress(ConnectionClosed):
        await ws.send("x" * (50 * 1024 * 1024))
    code = await ending(ws, 10)
    print(
        f"  a 50 MB message: {code} in {time.monotonic() - began:.2f} s; {before} -> {memory(server)}"
    )
    ws = await signed_in(port, alice)
    for _ in range(1000):
        try:
            await ws.send('{"type":"ping"}')
        except ConnectionClosed:
            break
    print(f"  1000 pings at once: {await ending(ws, 10)}")
    ws = await connect(f"ws://127.0.0.1:{port}/ws", proxy=None, origin="http://evil.example")
    print(f"  Origin http://evil.example: {await ending(ws, 10)}")
    own = f"http://127.0.0.1:{port}"
    ws = await connect(f"ws://127.0.0.1:{port}/ws", proxy=None, origin=own)
    await ws.send(json.dumps({"type": "auth", "token": alice}))
    print(f"  Origin {own}: {json.loads(await ws.recv())['type']}")
    await ws.close()


async def sign_out_everywhere(port: int, other: int) -> None:
    base = f"http://127.0.0.1:{port}"
    bob = await token(base, "bob")
    here = [await signed_in(port, bob) for _ in range(5)]
    there = [await signed_in(other, bob) for _ in range(5)]
    began = time.monotonic()
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base}/api/auth/sign-out", headers={"Authorization": f"Bearer {bob}"})

    async def timed(ws: ClientConnection) -> str:
        code = await ending(ws, 10)
        return f"{code} at {time.monotonic() - began:.2f} s"

    print(f"  sign-out {r.status_code}")
    print(f"  this instance: {Counter(await asyncio.gather(*(timed(ws) for ws in here)))}")
    print(f"  the other: {Counter(await asyncio.gather(*(timed(ws) for ws in there)))}")


async def main() -> None:
    directory = Path(tempfile.mkdtemp())
    port = free_port()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        print("1. clients that stop reading (TELLONCE_WS_PER_USER=100 for this one)")
        server = start(directory / "one.db", port, TELLONCE_WS_PER_USER="100")
        servers.append(server)
        print(f"  at rest: {memory(server)}")
        await stalled_clients(server, port)
        server.terminate()
        server.wait()
        server = start(directory / "two.db", port)
        servers.append(server)
        print("2. one token, many sockets")
        await one_token_many_sockets(server, port)
        print("3. what clients send")
        await what_clients_send(server, port)
        print("4. a sign-out, two instances")
        other = free_port()
        servers.append(start(directory / "two.db", other))
        await sign_out_everywhere(port, other)
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        shutil.rmtree(directory)


if __name__ == "__main__":
    asyncio.run(main())
