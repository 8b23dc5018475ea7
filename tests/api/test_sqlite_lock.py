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


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_calls_go_on_while_an_agent_signs_in_or_a_user_is_created(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password check and the hashing (argon2, tens of ms each) hold no transaction: on
    SQLite one would hold the write lock, and every call would wait for a shift to sign in."""
    import threading

    from app.auth import service as auth

    release = threading.Event()
    entered = threading.Event()
    verify, hash_ = auth.verify_secret, auth.hash_secret

    def slow_verify(stored: str | None, secret: str) -> bool:
        entered.set()
        release.wait(DEADLINE_S)
        return verify(stored, secret)

    def slow_hash(secret: str) -> str:
        entered.set()
        release.wait(DEADLINE_S)
        return hash_(secret)

    supervisor = await api.as_("super")
    monkeypatch.setattr(auth, "verify_secret", slow_verify)
    monkeypatch.setattr(auth, "hash_secret", slow_hash)
    slow = [
        api.http.post("/api/auth/token", data={"username": "alice", "password": "demo"}),
        api.http.post(
            "/api/users",
            json={"username": "dora", "password": "a-good-password", "role": "agent"},
            headers=supervisor,
        ),
    ]
    for i, request in enumerate(slow):
        entered.clear()
        release.clear()
        pending = asyncio.create_task(request)
        try:
            assert await asyncio.to_thread(entered.wait, DEADLINE_S)
            # While the password is checked or hashed, a call is created and read back.
            created = await asyncio.wait_for(
                api.http.post(
                    "/api/calls", json={"caller_number": f"+1555777100{i}"}, headers=api.ivr
                ),
                DEADLINE_S,
            )
            assert created.status_code == 201, created.text
            assert not pending.done()
        finally:
            release.set()
        answer = await asyncio.wait_for(pending, DEADLINE_S)
        assert answer.status_code in (200, 201), answer.text
