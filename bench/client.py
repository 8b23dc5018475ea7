"""The load generator's parts: a lean keep-alive HTTP client, agent websockets, percentiles.

The HTTP client is a few dozen lines over asyncio streams rather than httpx, so that the client's
own cost per request stays small next to the server's: on two cores it shares the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection

HOST = "127.0.0.1"


class HttpError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:300]!r}")
        self.status = status


class Http:
    """HTTP/1.1 with a pool of keep-alive connections to one server; JSON in, JSON out."""

    def __init__(self, port: int, *, max_connections: int = 64) -> None:
        self.port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        form: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Any:
        if form is not None:
            data = urlencode(form).encode()
            ctype = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            ctype = "application/json"
        else:
            data, ctype = b"", ""
        head = [f"{method} {path} HTTP/1.1", f"host: {HOST}:{self.port}"]
        if token is not None:
            head.append(f"authorization: Bearer {token}")
        if ctype:
            head.append(f"content-type: {ctype}")
        head.append(f"content-length: {len(data)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + data
        async with self._slots:
            reader, writer = await self._connection()
            try:
                writer.write(raw)
                status, keep, payload = await _read_response(reader)
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()
        if status >= 400:
            raise HttpError(method, path, status, payload)
        return json.loads(payload) if payload else None

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(HOST, self.port)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close"
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        return status, keep, b"".join(chunks)
    length = int(headers.get("content-length", "0"))
    return status, keep, await reader.readexactly(length)


# --- websockets -----------------------------------------------------------------------------

# (socket, raw message, receive time): raw, so that a handler parses only what it needs.
OnEvent = Callable[["Socket", str, float], None]


@dataclass
class Socket:
    """One authenticated websocket; every event goes to on_event with its receive time."""

    port: int
    token: str
    user_id: int = 0
    compression: bool = False
    on_event: OnEvent | None = None
    ws: ClientConnection | None = None
    received: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def open(self) -> None:
        self.ws = await websockets.connect(
            f"ws://{HOST}:{self.port}/ws",
            compression="deflate" if self.compression else None,
            ping_interval=None,
            max_size=2**24,
            open_timeout=60,
        )
        await self.ws.send(json.dumps({"type": "auth", "token": self.token, "last_seq": None}))
        while True:
            ready = json.loads(await self.ws.recv())
            if ready.get("type") == "ready":
                break
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                now = time.perf_counter()
                self.received += 1
                if self.on_event is not None:
                    self.on_event(self, str(message), now)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def gather_limited(jobs: Iterable[Awaitable[Any]], limit: int) -> list[Any]:
    """Await the jobs, at most limit at a time."""
    slots = asyncio.Semaphore(limit)

    async def one(job: Awaitable[Any]) -> Any:
        async with slots:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


# --- figures ------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of values (p in 0..100); nan for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else math.nan,
    }


def load() -> float:
    """The one-minute load average now: recorded with every figure."""
    return round(os.getloadavg()[0], 2)
