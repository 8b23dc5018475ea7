"""The embedded default runs SQLite on the event loop: another process's lock never freezes it.

While a second process (a `tellonce user create`, a backup, a migration) holds the database's
write lock, a request that writes waits for it, every other request is still answered, and
the write completes once the lock is released.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from sqlalchemy import make_url
from support import Api

DEADLINE_S = 20.0

HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_write_waits_for_another_process_while_the_server_keeps_answering(
    api: Api,
) -> None:
    database = make_url(api.live.settings.database_url).database
    assert database is not None
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        database,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        line = await asyncio.wait_for(holder.stdout.readline(), DEADLINE_S)
        assert line.strip() == b"locked"

        write = asyncio.create_task(
            api.http.post("/api/calls", json={"caller_number": "+15557770001"}, headers=api.ivr)
        )
        # The server keeps answering: a request that needs no lock comes back while the write
        # waits, several times over.
        for _ in range(5):
            health = await asyncio.wait_for(api.http.get("/healthz"), DEADLINE_S)
            assert health.status_code == 200
        assert not write.done(), "the write went through while another process held the lock"

        holder.stdin.write(b"\n")
        await holder.stdin.drain()
        created = await asyncio.wait_for(write, DEADLINE_S)
        assert created.status_code == 201, created.text
        # And it was stored: a supervisor reads it back.
        call = await api.call(created.json()["id"])
        assert call["caller_number"] == "+15557770001"
    finally:
        if holder.returncode is None:
            holder.kill()
        await asyncio.wait_for(holder.wait(), DEADLINE_S)
