"""The embedded default's WAL is checkpointed while the server runs.

What a user sees: the database file itself catches up with what was written, so a copy of the
file alone (a naive backup) holds recent calls, and the WAL does not grow without end under
steady traffic.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import make_url
from support import Api

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


# SQLite checkpoints once the WAL holds 1000 pages (4 MiB of 4 KiB pages); one commit more may
# be written before it restarts from its beginning.
WAL_BOUND = 6 * 1024 * 1024


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_wal_stays_small_under_steady_traffic(api: Api) -> None:
    database = make_url(api.live.settings.database_url).database
    assert database is not None
    supervisor = await api.as_("super")
    for i in range(150):
        created = await api.http.post(
            "/api/calls", json={"caller_number": f"+1555666{i:04d}"}, headers=api.ivr
        )
        assert created.status_code == 201, created.text
        for n in range(6):  # notes of nearly TELLONCE_MAX_NOTE_CHARS (2000)
            note = await api.http.post(
                f"/api/calls/{created.json()['id']}/notes",
                json={"text": f"note {n} " + "x" * 1980},
                headers=supervisor,
            )
            assert note.status_code == 201, note.text
    # Far more was written than the WAL may hold, so it must have started over.
    assert await asyncio.to_thread(os.path.getsize, database) > WAL_BOUND
    wal_size = await asyncio.to_thread(os.path.getsize, database + "-wal")
    assert wal_size <= WAL_BOUND, f"the WAL holds {wal_size} bytes"
