"""Users as the call lifecycle reads and changes them: rows through app/sql.py, no ORM."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.sql import Db, Row, Sql
from app.users.models import User


class UserRow(Row):
    """A user (never the password hash): the request's own user, and agents being routed."""

    MODEL = User
    COLUMNS = (
        "id",
        "username",
        "display_name",
        "role",
        "skills",
        "status",
        "requested_status",
        "status_since",
        "wrapup_until",
        "created_at",
    )

    id: int
    username: str
    display_name: str
    role: str
    skills: list[Any]
    status: str
    requested_status: str | None
    status_since: datetime
    wrapup_until: datetime | None
    created_at: datetime


_NAMES = Sql("SELECT id, display_name FROM users WHERE id IN {ids}")


async def get(db: Db, user_id: int, *, lock: bool = False) -> UserRow | None:
    return await UserRow.get(db, user_id, lock=lock)


async def names(db: Db, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return {int(i): str(n) for i, n in await db.rows(_NAMES, {"ids": db.ids(user_ids)})}
