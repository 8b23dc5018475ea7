"""Fixtures shared by every test folder; the helpers they use live in support.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Api, LiveServer, Templates, Ws, start_server


# tryfirst: pytest-xdist reads the groups in a hook of its own, which must come after this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """What must not run beside itself under pytest-xdist (`--dist loadgroup`) shares a group,
    and so one worker, in collection order.

    `services`: what uses PG_URL's database itself (resetting it), Redis (one server, one
    channel of events) or several server processes. A test on a copy of a PostgreSQL template
    (db_url) is not among them: each worker has templates of its own (support.Templates).
    `browser`: the e2e tests, each with a live server and a Chromium; one package-scoped browser.
    """
    for item in items:
        shared = item.get_closest_marker("redis") or item.get_closest_marker("slow")
        if item.get_closest_marker("postgres") and "db_url" not in item.fixturenames:
            shared = True
        if shared:
            item.add_marker(pytest.mark.xdist_group("services"))
        elif item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session", autouse=True)
def flows_read_once() -> Iterator[None]:
    """Each live server's lifespan reads its phone tree (app.main's load_flow): parsed and
    checked once per file and content here, not once per server, as one process would."""
    from app import main
    from ivr.flow import Flow, default_flow_path, load_flow

    parsed: dict[tuple[str, bytes], Flow] = {}

    def read(path: str | os.PathLike[str] | None = None) -> Flow:
        file = Path(path) if path is not None else default_flow_path()
        try:
            key = (str(file.resolve()), file.read_bytes())
        except OSError:
            return load_flow(path)  # it says what is wrong
        if key not in parsed:
            parsed[key] = load_flow(path)
        return parsed[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(main, "load_flow", read)
        yield


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Template databases, each built the first time a test asks for it; dropped at the end."""
    built = Templates(tmp_path_factory.mktemp("templates"))
    yield built
    built.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, templates: Templates) -> str:
    """A fresh, migrated database: a copy of an SQLite file, or a PostgreSQL database made from a
    template, both built once per session.

    For a test that starts servers (server_factory) the copy already holds the demo data, which
    their start_server(demo=True) then finds there and skips; any other test gets the schema
    alone, as `tellonce migrate` leaves it.
    """
    demo = "server_factory" in request.fixturenames
    if request.param == "sqlite":
        return templates.sqlite(tmp_path / "tellonce.db", demo=demo)
    return templates.postgres(demo=demo)


@pytest.fixture
def server_factory(db_url: str) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def make(**overrides: Any) -> LiveServer:
        if overrides.pop("demo", True) is False:
            pytest.fail(
                "server_factory's database holds the demo data already (db_url): start a server "
                "without it with start_server(db_url, demo=False) in a test that does not use "
                "server_factory"
            )
        # demo=False: the copy holds the demo data, so there is nothing to load.
        live = start_server(db_url, demo=False, **overrides)
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
