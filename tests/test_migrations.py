"""The schema comes from Alembic alone, matches the models, and upgrades race-free."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from support import PG_URL, reset_postgres

import app.models  # noqa: F401
from app.db import Base
from app.migrate import upgrade


def _diff_and_tables(url: str) -> tuple[list[object], set[str], int]:
    async def run() -> tuple[list[object], set[str], int]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:

            def check(sync_conn: object) -> tuple[list[object], set[str]]:
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
                return compare_metadata(ctx, Base.metadata), set(
                    inspect(sync_conn).get_table_names()
                )  # type: ignore[arg-type]

            diff, tables = await conn.run_sync(check)
            counter = (
                await conn.execute(text("select value from counters where name='events'"))
            ).scalar_one()
        await engine.dispose()
        return diff, tables, counter

    return asyncio.run(run())


def test_upgrade_builds_the_schema_of_the_models(db_url: str) -> None:
    upgrade(db_url)  # a second upgrade is a no-op
    diff, tables, counter = _diff_and_tables(db_url)
    assert diff == []
    assert set(Base.metadata.tables) | {"alembic_version"} == tables
    assert counter == 0


def _migrate_processes(url: str, cwd: Path, n: int = 3) -> list[subprocess.CompletedProcess[str]]:
    env = {
        **os.environ,
        "TELLONCE_DATABASE_URL": url,
        "TELLONCE_SECRET_KEY": "s" * 40,
        "TELLONCE_IVR_API_KEY": "k" * 30,
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "migrate"], cwd=cwd, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]  # fmt: skip
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_an_sqlite_upgrade_is_one_transaction(tmp_path: Path) -> None:
    """Alembic commits after each revision on SQLite unless the upgrade runs in a transaction of
    its own: an instance starting meanwhile then took the lock between two revisions, planned
    the rest again, and failed on an index that already existed."""
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(Engine, "commit", count)
    try:
        upgrade(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    finally:
        event.remove(Engine, "commit", count)
    assert len(commits) == 1
    assert _diff_and_tables(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")[0] == []


def test_instances_migrating_at_once_do_not_race_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    for result in _migrate_processes(url, tmp_path):
        assert result.returncode == 0, result.stderr
    assert _diff_and_tables(url)[0] == []


@pytest.mark.postgres
def test_instances_migrating_at_once_do_not_race_postgres(tmp_path: Path) -> None:
    reset_postgres()
    for result in _migrate_processes(PG_URL, tmp_path):
        assert result.returncode == 0, result.stderr
    assert _diff_and_tables(PG_URL)[0] == []
