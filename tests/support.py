"""Test support shared by every test folder: a live server, its HTTP and websocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
import websockets
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings

PG_URL = os.environ.get("TELLONCE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IVR_KEY = "test-ivr-key-0123456789"
SECRET = "test-secret-key-0123456789-abcdefghijkl"
DEADLINE = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def reset_postgres(url: str = PG_URL) -> None:
    """Empty the PostgreSQL test database (its own event loop: fixtures call it from sync code)."""

    async def reset() -> None:
        engine = create_async_engine(url)
        try:
            # A server of the previous test may still be closing its connections, and a DROP
            # that meets one of them mid-read can deadlock: PostgreSQL then cancels one side.
            for attempt in range(5):
                try:
                    async with engine.begin() as conn:
                        await conn.execute(text("SET lock_timeout = '10s'"))
                        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                        await conn.execute(text("CREATE SCHEMA public"))
                    return
                except DBAPIError:
                    if attempt == 4:
                        raise
        finally:
            await engine.dispose()

    asyncio.run(reset())


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@dataclass
class LiveServer:
    base_url: str
    ws_url: str
    settings: Settings
    ivr_key: str = IVR_KEY
    _server: _Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=DEADLINE)


def start_server(db_url: str, *, demo: bool = True, **overrides: Any) -> LiveServer:
    from app import demo as demo_data
    from app.cli import in_transaction
    from app.main import create_app

    settings = Settings(
        database_url=db_url,
        secret_key=SECRET,  # type: ignore[arg-type]
        ivr_api_key=IVR_KEY,  # type: ignore[arg-type]
        **overrides,
    )
    if demo:
        # In a thread of its own: async tests may start a server while their loop runs.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, in_transaction(settings, demo_data.load)).result()
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    if not server.ready.wait(DEADLINE):
        raise RuntimeError("the server did not start")
    return LiveServer(
        base_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}/ws",
        settings=settings,
        _server=server,
        _thread=thread,
    )


class Api:
    """The public HTTP API as a test drives it: IVR, agents and supervisors."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.http = httpx.AsyncClient(base_url=live.base_url, timeout=DEADLINE)
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}

    @property
    def ivr(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.live.ivr_key}"}

    async def login(self, username: str, password: str = "demo") -> dict[str, str]:
        if username not in self.tokens:
            r = await self.http.post(
                "/api/auth/token", data={"username": username, "password": password}
            )
            assert r.status_code == 200, r.text
            self.tokens[username] = r.json()["access_token"]
            self.ids[username] = r.json()["user"]["id"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def as_(self, username: str) -> dict[str, str]:
        return await self.login(username)

    async def set_status(self, username: str, status: str) -> dict[str, Any]:
        r = await self.http.put(
            "/api/me/status", json={"status": status}, headers=await self.login(username)
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def new_call(
        self,
        caller: str = "+15551230001",
        *,
        verify: tuple[str, str] | None = ("12345678", "1234"),
        intent: str | None = "card_lost",
        utterance: str | None = None,
        escalate_reason: str | None = None,
        collected: dict[str, str] | None = None,
        steps: list[tuple[str, str, str | None]] | None = None,
        handoff: bool = True,
    ) -> int:
        r = await self.http.post(
            "/api/calls", json={"caller_number": caller, "language": "en"}, headers=self.ivr
        )
        assert r.status_code == 201, r.text
        call_id: int = r.json()["id"]
        for node, prompt, key in steps or [
            ("language", "For English press 1", "1"),
            ("account", "Enter your account number", "12345678#"),
            ("pin", "Enter your PIN", "****"),
            ("menu", "Lost card press 2", "2"),
        ]:
            r = await self.http.post(
                f"/api/calls/{call_id}/steps",
                json={"node": node, "prompt": prompt, "input": key},
                headers=self.ivr,
            )
            assert r.status_code == 201, r.text
        if verify is not None:
            r = await self.http.post(
                f"/api/calls/{call_id}/verify",
                json={"account_number": verify[0], "pin": verify[1]},
                headers=self.ivr,
            )
            assert r.status_code == 200, r.text
        if handoff:
            r = await self.http.post(
                f"/api/calls/{call_id}/handoff",
                json={
                    "intent": intent,
                    "collected": collected or {},
                    "utterance": utterance,
                    "escalate_reason": escalate_reason,
                },
                headers=self.ivr,
            )
            assert r.status_code == 200, r.text
        return call_id

    async def call(self, call_id: int, username: str = "super") -> dict[str, Any]:
        r = await self.http.get(f"/api/calls/{call_id}", headers=await self.login(username))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def post(self, path: str, username: str | None, body: Any = None) -> httpx.Response:
        headers = self.ivr if username is None else await self.login(username)
        return await self.http.post(path, json=body, headers=headers)


class Ws:
    """A websocket client that collects events; tests wait for them with a deadline."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self.ready_seq: int | None = None
        self.last_seq: int | None = None
        self._conn: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, last_seq: int | None = None) -> Ws:
        self._conn = await websockets.connect(self.url, open_timeout=DEADLINE)
        await self._conn.send(
            json.dumps({"type": "auth", "token": self.token, "last_seq": last_seq})
        )
        while True:
            msg = json.loads(await asyncio.wait_for(self._conn.recv(), DEADLINE))
            if msg.get("type") == "ready":
                self.ready_seq = msg["seq"]
                break
            self._record(msg)
        self._reader = asyncio.create_task(self._read())
        return self

    def _record(self, msg: dict[str, Any]) -> None:
        if "seq" in msg and msg.get("type") not in ("ready", "pong"):
            self.last_seq = msg["seq"]
            self.seen.append(msg)
            self.events.put_nowait(msg)

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._conn:
                self._record(json.loads(raw))

    async def next(
        self,
        type_: str,
        *,
        call_id: int | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
        within: float = DEADLINE,
    ) -> dict[str, Any]:
        """The next event of this type (call, condition), skipping others; fails at the deadline."""

        async def find() -> dict[str, Any]:
            while True:
                event = await self.events.get()
                if event["type"] != type_:
                    continue
                data = event["data"]
                cid = data.get("call_id", data.get("id")) if isinstance(data, dict) else None
                if (call_id is None or cid == call_id) and (where is None or where(data)):
                    return event

        return await asyncio.wait_for(find(), within)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
