"""In-process tests of the services: a fresh SQLite file per test (a copy of one migrated once),
an AppContext without a server, and factories for agents, customers and calls."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from app.config import Settings
from app.context import AppContext
from app.migrate import upgrade
from app.uow import UnitOfWork, unit_of_work
from ivr.flow import load_flow

from .factories import Factory


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tellonce.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def ctx(template_db: Path, tmp_path: Path) -> AsyncIterator[AppContext]:
    path = tmp_path / "tellonce.db"
    await asyncio.to_thread(shutil.copyfile, template_db, path)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{path}",
        secret_key=SecretStr("unit-test-secret-key-0123456789abcdef"),
        ivr_api_key=SecretStr("unit-test-ivr-key-0123456789"),
    )
    context = AppContext.build(settings, load_flow(None))
    yield context
    await context.dispose()


@pytest.fixture
def in_uow(ctx: AppContext) -> Callable[..., Awaitable[Any]]:
    """Run work(uow) in a unit of work of its own, committed; what work returned."""

    async def run(work: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
        async with unit_of_work(ctx) as uow:
            return await work(uow)

    return run


@pytest.fixture
def make(ctx: AppContext) -> Factory:
    return Factory(ctx)
