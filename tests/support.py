"""Test support shared by every test folder: a live server, its HTTP and websocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
import websockets
from argon2 import PasswordHasher
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings

PG_URL = os.environ.get("TELLONCE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IVR_KEY = "test-ivr-key-0123456789"
SECRET = "test-secret-key-0123456789-abcdefghijkl"
DEADLINE = 10.0

T = TypeVar("T")


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


def in_thread(work: Callable[..., T], *args: Any) -> T:
    """work(*args) in a thread of its own, for work that runs an event loop of its own (as
    asyncio.run and Alembic do): the caller's thread may be running one (an async test's, or
    sync Playwright's)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work, *args).result()


def run_in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on an event loop of its own, in a thread of its own."""
    return in_thread(asyncio.run, work)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def postgres_url(database: str, url: str = PG_URL) -> str:
    """The URL of another database on the server of url."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def postgres_admin(*statements: str, url: str = PG_URL) -> None:
    """Run statements one by one outside a transaction (CREATE/DROP DATABASE need that)."""

    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()

    run_in_thread(run())


def make_settings(db_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=db_url,
        secret_key=SECRET,  # type: ignore[arg-type]
        ivr_api_key=IVR_KEY,  # type: ignore[arg-type]
        **overrides,
    )


def load_demo(settings: Settings) -> None:
    """app.demo.load in a transaction of its own; it skips what is there already."""
    from app import demo as demo_data
    from app.cli import in_transaction

    run_in_thread(in_transaction(settings, demo_data.load))


# argon2id at its cheapest: the demo's passwords and PINs are checked in almost every test, and a
# check costs what the stored hash says, so the templates' hashes are cheap ones. What the app
# itself hashes (new users, customers, the unknown user's dummy) keeps its own strength.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def cheapen_demo_secrets(db_url: str) -> None:
    """The demo users' passwords and customers' PINs, hashed again by CHEAP_HASHER."""
    from app import demo as demo_data

    async def rehash() -> None:
        engine = create_async_engine(db_url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE users SET password_hash = :hash"),
                    {"hash": CHEAP_HASHER.hash(demo_data.DEMO_PASSWORD)},
                )
                await conn.execute(
                    text("UPDATE customers SET pin_hash = :hash WHERE account_number = :account"),
                    [
                        {"hash": CHEAP_HASHER.hash(pin), "account": account}
                        for _, account, pin, *_ in demo_data.CUSTOMERS
                    ],
                )
        finally:
            await engine.dispose()

    run_in_thread(rehash())


class Templates:
    """Databases built once per session and copied for each test: migrated (app.migrate), and
    with or without the demo data (whose argon2 hashes cost tens of ms each; see
    cheapen_demo_secrets for the checks of them).

    An SQLite template is a file, copied. A PostgreSQL one is a database next to PG_URL's (which
    the tests that use PG_URL itself keep to themselves: see tests/conftest.py), one per
    pytest-xdist worker, and each test gets a fresh copy of it.
    """

    def __init__(self, directory: Path, pg_url: str = PG_URL) -> None:
        self.directory = directory
        self.pg_url = pg_url
        base = make_url(pg_url).database or "test"
        # Each pytest-xdist worker has databases of its own; PG_URL's itself stays shared.
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if worker is not None:
            base = f"{base}_{worker}"
        self.pg_base = base
        # Two copies take turns: see postgres().
        self.pg_copies = (f"{base}_copy_a", f"{base}_copy_b")
        self._sqlite: dict[bool, Path] = {}
        self._postgres: dict[bool, str] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="postgres-copy")
        self._next: Future[tuple[str, bool]] | None = None

    @staticmethod
    def _build(url: str, *, demo: bool) -> None:
        from app.migrate import upgrade

        in_thread(upgrade, url)
        if demo:
            load_demo(make_settings(url))
            cheapen_demo_secrets(url)

    def sqlite(self, target: Path, *, demo: bool) -> str:
        """A copy of the SQLite template at target; its URL."""
        if demo not in self._sqlite:
            path = self.directory / ("demo.db" if demo else "plain.db")
            self._build(sqlite_url(path), demo=demo)
            # Everything in the file itself, so that a copy of the file alone holds it all.
            conn = sqlite3.connect(path)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            assert not Path(f"{path}-wal").exists(), "the template's WAL outlived its connections"
            self._sqlite[demo] = path
        shutil.copyfile(self._sqlite[demo], target)
        return sqlite_url(target)

    def _postgres_template(self, demo: bool) -> str:
        if demo not in self._postgres:
            name = f"{self.pg_base}_template_{'demo' if demo else 'plain'}"
            postgres_admin(
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                f'CREATE DATABASE "{name}"',
                url=self.pg_url,
            )
            self._build(postgres_url(name, self.pg_url), demo=demo)
            self._postgres[demo] = name
        return self._postgres[demo]

    def _copy(self, name: str, demo: bool) -> tuple[str, bool]:
        # FORCE: whatever a test left connected to it is ended.
        postgres_admin(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{self._postgres[demo]}"',
            url=self.pg_url,
        )
        return name, demo

    def postgres(self, *, demo: bool) -> str:
        """A fresh copy of the PostgreSQL template (CREATE DATABASE ... TEMPLATE); its URL.

        While a test runs on one copy, the previous test's (done with: its servers are stopped)
        is dropped and made afresh in the background, ready for the next test; the tenth of a
        second or more that takes is then no test's.
        """
        ready = None
        if self._next is not None:
            # Waited for in any case: no two copies are ever made of a template at once.
            pending, self._next = self._next, None
            ready = pending.result()
        self._postgres_template(demo)
        if ready is not None and ready[1] == demo:
            name = ready[0]
        else:
            name = ready[0] if ready is not None else self.pg_copies[0]
            self._copy(name, demo)
        other = self.pg_copies[1] if name == self.pg_copies[0] else self.pg_copies[0]
        self._next = self._pool.submit(self._copy, other, demo)
        return postgres_url(name, self.pg_url)

    def drop(self) -> None:
        """Drop the PostgreSQL copies and templates, once the copy under way is made."""
        try:
            if self._next is not None:
                pending, self._next = self._next, None
                pending.result()
        finally:
            self._pool.shutdown()
            if self._postgres:
                postgres_admin(
                    *(
                        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                        for name in [*self.pg_copies, *self._postgres.values()]
                    ),
                    url=self.pg_url,
                )


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.exit_asked = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        """uvicorn's loop of ticks (the Date header, should_exit), except that a stop wakes it
        at once: each test stops its servers, and would otherwise wait for the next tick."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.exit_asked.wait()

    def stop(self) -> None:
        """Ask the server, from another thread, to shut down."""
        self.should_exit = True
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed already
                self.loop.call_soon_threadsafe(self.exit_asked.set)


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
            self._server.stop()
            self._thread.join(timeout=DEADLINE)


def start_server(db_url: str, *, demo: bool = True, **overrides: Any) -> LiveServer:
    from app.logs import server_log_config
    from app.main import create_app
    from app.server import server_config

    settings = make_settings(db_url, **overrides)
    if demo:
        # Cheap on a copy of the demo template: what is there already is skipped, not hashed.
        load_demo(settings)
    port = free_port()
    # The same uvicorn settings as `tellonce serve`: its limits and timeouts hold in every test,
    # and it logs as `tellonce serve` logs (app/cli.py), warnings and errors only.
    config = server_config(
        create_app(settings),
        settings,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=server_log_config(settings, level="warning"),
        lifespan="on",
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
