"""Fixtures shared by every test folder; the helpers they use live in support.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import PG_URL, Api, LiveServer, Ws, reset_postgres, start_server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database: an SQLite file, or the PostgreSQL test database emptied."""
    from app.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'tellonce.db'}"
    else:
        reset_postgres()
        url = PG_URL
    upgrade(url)
    return url


@pytest.fixture
def server_factory(db_url: str) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def make(**overrides: Any) -> LiveServer:
        live = start_server(db_url, **overrides)
        started.append(live)
        return live

    yield make
    for live in started:
        live.stop()


@pytest.fixture
def server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    return server_factory()


@pytest.fixture
async def api(server: LiveServer) -> AsyncIterator[Api]:
    client = Api(server)
    yield client
    await client.http.aclose()


@pytest.fixture
async def ws(api: Api) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Ws] = []

    async def open_ws(username: str, last_seq: int | None = None) -> Ws:
        await api.login(username)
        client = Ws(api.live.ws_url, api.tokens[username])
        opened.append(client)
        return await client.connect(last_seq)

    yield open_ws
    for client in opened:
        await client.close()
