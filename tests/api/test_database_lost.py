"""PostgreSQL drops the server's connections (a restart, a failover): requests meanwhile answer
503 with a reason, never 500, and the server recovers by itself with no change lost.

The pool does not ping a connection before each use (a round trip on every request); a
connection the database closed fails its first statement instead and is thrown away.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import make_url
from support import DEADLINE, Api, postgres_admin

pytestmark = pytest.mark.postgres


def drop_connections(db_url: str) -> None:
    database = make_url(db_url).database
    postgres_admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )


async def test_requests_after_the_database_dropped_connections(api: Api, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no connection to lose")
    alice = await api.login("alice")
    assert (await api.http.get("/api/me", headers=alice)).status_code == 200

    drop_connections(db_url)

    answers: list[int] = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        r = await api.http.put("/api/me/status", json={"status": "available"}, headers=alice)
        answers.append(r.status_code)
        if r.status_code == 200:
            break
        assert r.status_code == 503, r.text
        assert r.json()["detail"] == "the database connection was lost; try again"
        assert r.headers["retry-after"] == "1"
    assert answers[-1] == 200, answers
    assert (await api.http.get("/api/me", headers=alice)).json()["status"] == "available"
