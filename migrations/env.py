"""Alembic environment: async engine, batch mode for SQLite, one database lock per upgrade."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.config import get_settings
from app.db import Base, create_engine

# Any constant works; every instance must use the same one.
MIGRATION_LOCK_ID = 7_271_118

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    return str(url or get_settings().database_url)


def _run(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    # Several instances may start at once: only one upgrades, the others wait and find it done.
    # The whole upgrade is one transaction, begun before Alembic reads the version: on SQLite
    # Alembic would otherwise commit after each revision, and an instance that took the lock
    # between two of them planned the remaining revisions a second time. On SQLite the
    # transaction begins IMMEDIATE and so holds the write lock; PostgreSQL takes a lock of its own.
    with connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=is_sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url(), pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(_run_async())
