"""Bring the schema to the newest Alembic revision: the only road by which it changes."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import make_url

import migrations

log = logging.getLogger("tellonce.migrate")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Run from synchronous code (Alembic's async env runs its own event loop)."""
    _create_owner_only(database_url)
    command.upgrade(alembic_config(database_url), "head")


def _create_owner_only(database_url: str) -> None:
    """A new SQLite file is made readable by its owner alone, as its secrets file is; SQLite
    gives its WAL and shared-memory files the same permissions as the database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process made it meanwhile
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
