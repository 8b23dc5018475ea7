"""A real server for websocket tests: uvicorn on a socket, a migrated database, a Hub, users."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select, text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.auth.service import create_token
from app.config import Settings
from app.context import AppContext
from app.db import create_engine
from app.migrate import upgrade
from app.realtime.bus import make_bus
from app.realtime.hub import Hub
from app.realtime.models import Counter
from app.realtime.router import router
from app.uow import UnitOfWork
from app.users.models import User

SECRET = "test-secret-key-of-a-decent-length-for-hs256"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
DEADLINE_S = 10.0


@dataclass
class Ev:
    """An event to emit: for user_id (an agent) and, when to_supervisors, every supervisor."""

    type: str
    user_id: int | None = None
    to_supervisors: bool = True
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Server:
    ctx: AppContext
    hub: Hub
    url: str
    users: dict[str, int]

    def token(self, who: str, *, ttl_s: int = 3600, version: int = 0) -> str:
        role = "supervisor" if who == "super" else "agent"
        return create_token(
            SECRET, user_id=self.users[who], role=role, ttl_s=ttl_s, version=version
        )

    async def emit(self, *events: Ev, wake: bool = True) -> list[int]:
        """Commit the events in one transaction; their seqs. wake=False loses the bus message."""
        async with self.ctx.database.session() as session:
            uow = UnitOfWork(self.ctx if wake else replace(self.ctx, hub=None), session)
            for ev in events:
                uow.emit(ev.type, ev.data, user_id=ev.user_id, to_supervisors=ev.to_supervisors)
            await uow.commit()
        top = await self.latest()
        return list(range(top - len(events) + 1, top + 1))

    async def latest(self) -> int:
        async with self.ctx.reading() as session:
            value = await session.scalar(select(Counter.value).where(Counter.name == "events"))
        assert value is not None
        return value

    async def open(self, **options: Any) -> ClientConnection:
        options.setdefault("compression", None)
        return await connect(self.url, proxy=None, open_timeout=DEADLINE_S, **options)

    async def login(
        self, who: str, last_seq: int | None = None, *, token: str | None = None, **options: Any
    ) -> tuple[ClientConnection, list[dict[str, Any]], int]:
        """Open, authenticate: the socket, the replayed events and ready's seq."""
        ws = await self.open(**options)
        token = token or self.token(who)
        await ws.send(json.dumps({"type": "auth", "token": token, "last_seq": last_seq}))
        replayed = []
        while True:
            message = await recv(ws)
            if message.get("type") == "ready" and "seq" in message and "data" not in message:
                return ws, replayed, message["seq"]
            replayed.append(message)


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S))
    return message


async def close_code(ws: ClientConnection, within: float = DEADLINE_S) -> int:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, "closed with no close frame"
    return closed.value.rcvd.code


async def recv_events(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [await recv(ws) for _ in range(count)]


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[int]:
    """Serve app with uvicorn on this loop; the port. The socket listens before serving starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws_ping_interval=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def running(settings: Settings, users: dict[str, int]) -> AsyncIterator[Server]:
    """One instance: its own context, bus, hub and port, on an already migrated database."""
    ctx = AppContext.build(settings, flow=None)  # type: ignore[arg-type]
    ctx.bus = make_bus(settings.redis_url)
    await ctx.bus.connect()
    # Wired as app.main wires it: commits go to this hub at once, and on to the others by bus.
    ctx.hub = hub = Hub(ctx)
    await hub.start()
    app = FastAPI()
    app.include_router(router)
    app.state.ctx = ctx
    try:
        async with serve(app) as port:
            yield Server(ctx, hub, f"ws://127.0.0.1:{port}/ws", users)
    finally:
        await hub.stop()
        await ctx.bus.disconnect()
        await ctx.dispose()


async def reset_postgres() -> None:
    engine = create_engine(POSTGRES_URL)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def add_users(settings: Settings) -> dict[str, int]:
    engine = create_engine(settings.database_url)
    users = {"super": "supervisor", "alice": "agent", "bob": "agent"}
    try:
        async with engine.begin() as conn:
            for name, role in users.items():
                await conn.execute(
                    User.__table__.insert().values(
                        username=name, password_hash="-", display_name=name.title(), role=role
                    )
                )
            rows = (
                await conn.execute(select(User.__table__.c.username, User.__table__.c.id))
            ).all()
    finally:
        await engine.dispose()
    return {name: id_ for name, id_ in rows}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite-memory"),
        pytest.param(
            "postgres", id="postgres-redis", marks=[pytest.mark.postgres, pytest.mark.redis]
        ),
    ],
)
async def settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    if request.param == "postgres":
        await reset_postgres()
        url, redis_url = POSTGRES_URL, REDIS_URL
    else:
        path: Path = tmp_path_factory.mktemp("ws") / "tellonce.db"
        url, redis_url = f"sqlite+aiosqlite:///{path}", None
    # Alembic's env runs its own event loop: run it off this one.
    await asyncio.to_thread(upgrade, url)
    return Settings(
        database_url=url,
        redis_url=redis_url,
        secret_key=SecretStr(SECRET),
        ivr_api_key=SecretStr("test-ivr-key-long-enough-for-checks"),
        # Long, so that the tests see the bus wake the hub; the poll has its own test.
        poll_interval_s=60.0,
    )


@pytest.fixture(scope="module")
async def users(settings: Settings) -> dict[str, int]:
    return await add_users(settings)


@pytest.fixture(scope="module")
async def server(settings: Settings, users: dict[str, int]) -> AsyncIterator[Server]:
    async with running(settings, users) as server:
        yield server
