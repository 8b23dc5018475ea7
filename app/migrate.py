"""Bring the schema to the newest Alembic revision: the only road by which it changes."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

log = logging.getLogger("tellonce.migrate")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Run from synchronous code (Alembic's async env runs its own event loop)."""
    command.upgrade(alembic_config(database_url), "head")
