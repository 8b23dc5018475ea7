"""The embedded default's WAL is checkpointed in the background, not by the commits.

A commit on the loop never copies the WAL into the database (that stopped every request for
some 15 ms); the server's checkpointer does, in a thread. What a user sees: the database file
itself catches up with what was written while the server runs, so the WAL does not grow without
end, and a copy of the file alone (a naive backup) holds recent calls.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Api

from app.db import create_engine
from app.sql import Tx
from app.sqlite_loop import Checkpointer

DEADLINE_S = 20.0


def calls_in_file_alone(database: Path, copy: Path) -> int:
    """Calls in a copy of the database file without its WAL: what the file itself holds."""
    shutil.copyfile(database, copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_database_file_catches_up_with_the_wal_while_the_server_runs(
    api: Api, tmp_path: Path
) -> None:
    database = make_url(api.live.settings.database_url).database
    assert database is not None
    numbers = [f"+1555888{i:04d}" for i in range(30)]
    for number in numbers:
        created = await api.http.post("/api/calls", json={"caller_number": number}, headers=api.ivr)
        assert created.status_code == 201, created.text
    listed = await api.http.get("/api/calls", headers=await api.as_("super"))
    assert listed.status_code == 200
    expected = len(listed.json())
    assert expected >= len(numbers)

    deadline = time.monotonic() + DEADLINE_S
    copy = tmp_path / "copy-of-the-file-alone.db"
    while (found := calls_in_file_alone(Path(database), copy)) < expected:
        assert time.monotonic() < deadline, f"the file holds {found} of {expected} calls"
        await asyncio.sleep(0.1)  # polling a file, with a deadline; nothing to wait on
    assert found == expected


async def test_commits_leave_the_wal_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", checkpoint_elsewhere=True)
    checkpointer = Checkpointer(str(path))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)"))
        # Some 2500 pages in 50 commits: more than SQLite's automatic checkpoint lets pile up.
        for _ in range(50):
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO t (payload) VALUES (randomblob(200000))"),
                )
        busy, frames, done = await asyncio.to_thread(checkpointer.checkpoint)
        assert busy == 0
        assert frames > 1000, "a commit checkpointed the WAL"
        assert done == frames
        # Everything is in the file itself now.
        copy = tmp_path / "copy.db"
        shutil.copyfile(path, copy)
        reader = sqlite3.connect(copy)
        try:
            assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 50
        finally:
            reader.close()
    finally:
        checkpointer.close()
        await engine.dispose()


class ReaderOverFirstCheckpoint(Checkpointer):
    """A checkpointer whose first checkpoint cannot copy the WAL's last commit, as under steady
    traffic, where a commit lands while the thread copies: here a reader holds a snapshot from
    before that commit, and lets it go when that checkpoint ends."""

    def __init__(self, path: str, reader: sqlite3.Connection, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.reader: sqlite3.Connection | None = reader

    def checkpoint(self) -> tuple[int, int, int]:
        result = super().checkpoint()
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        return result


async def insert(engine: AsyncEngine, size: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (payload) VALUES (randomblob(:n))"), {"n": size})


@pytest.mark.parametrize("hold", [True, False], ids=["held", "not-held"])
async def test_a_long_wal_restarts_though_a_commit_overtakes_its_checkpoint(
    tmp_path: Path, hold: bool
) -> None:
    """A checkpoint that leaves the WAL's end uncopied leaves SQLite appending to the WAL. With
    the server's transactions held for one more checkpoint, the next commit writes from the
    WAL's start instead, and the file stops growing."""
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", checkpoint_elsewhere=True)
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    checkpointer = ReaderOverFirstCheckpoint(
        str(path), reader, hold=(lambda: Tx.reading(engine)) if hold else None, restart_frames=100
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)"))
        for _ in range(20):
            await insert(engine, 50_000)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM t").fetchone()
        await insert(engine, 5000)

        busy, _, _ = await checkpointer.run_once()
        assert busy == 0
        assert checkpointer.held == (1 if hold else 0)
        # The server commits again: a WAL that restarts holds that commit alone.
        await insert(engine, 5000)
        _, frames, _ = await asyncio.to_thread(checkpointer.checkpoint)
        if hold:
            assert frames < 10, f"the WAL did not restart: {frames} frames"
        else:
            assert frames > 200, "SQLite restarted the WAL by itself: this test shows nothing"
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
        assert count == 22
    finally:
        if checkpointer.reader is not None:
            checkpointer.reader.close()
        checkpointer.close()
        await engine.dispose()
