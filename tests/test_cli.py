"""The `tellonce` command as a newcomer runs it: serve --demo, migrate, user create."""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import PG_URL, free_port, reset_postgres

from ivr.engine import Speech
from ivr.simulator import parse_keys


def tellonce(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        text=True,
        capture_output=True,
        timeout=120,
    )


def test_user_create_works_on_a_database_no_serve_touched(tmp_path: Path) -> None:
    result = tellonce(
        "user", "create", "boss", "--password", "s3cret-pw", "--role", "supervisor",
        "--name", "The Boss", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert (tmp_path / "tellonce.db").exists()
    again = tellonce(
        "user", "create", "boss", "--password", "other-pw", "--role", "agent", cwd=tmp_path
    )
    assert again.returncode == 1 and "taken" in again.stderr
    bad = tellonce("user", "create", "x y", "--password", "pw", "--role", "agent", cwd=tmp_path)
    assert bad.returncode == 2 and "invalid" in bad.stderr


def test_user_create_refuses_a_skill_that_is_no_queue(tmp_path: Path) -> None:
    result = tellonce(
        "user", "create", "dora", "--password", "s3cret-pw", "--role", "agent",
        "--skills", "billing,mortgages", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown skill 'mortgages'" in result.stderr
    assert "billing, cards, escalations, loans" in result.stderr
    assert "Traceback" not in result.stderr
    ok = tellonce(
        "user", "create", "dora", "--password", "s3cret-pw", "--role", "agent",
        "--skills", "billing,loans", cwd=tmp_path,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_user_create_sets_where_the_phone_webhook_dials_the_agent(tmp_path: Path) -> None:
    bad = tellonce(
        "user", "create", "erin", "--password", "s3cret-pw", "--role", "agent",
        "--phone", "555-1234", cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2 and "phone" in bad.stderr
    ok = tellonce(
        "user", "create", "erin", "--password", "s3cret-pw", "--role", "agent",
        "--skills", "cards", "--phone", "client:erin", cwd=tmp_path,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(tmp_path / "tellonce.db") as db:
        assert db.execute("SELECT phone FROM users WHERE username = 'erin'").fetchone() == (
            "client:erin",
        )


def test_the_readmes_escalation_example_is_one_shell_word_with_the_words_quoted() -> None:
    """The tour's `--keys` example survives a POSIX shell and reaches the phone tree as words."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = next(line for line in readme.splitlines() if "husband" in line)
    example = line[line.index("`--keys") + 1 : line.rindex("`")]
    argv = shlex.split(example)
    assert argv[0] == "--keys" and len(argv) == 2
    answers = parse_keys(argv[1])
    assert answers[-1] == Speech("my late husband's account")


SECRETS = {"TELLONCE_SECRET_KEY": "x" * 32, "TELLONCE_IVR_API_KEY": "y" * 32}
BAD_DATABASES = [
    (
        "postgresql+asyncpg://postgres:hunter2@127.0.0.1:5432/no_such_database",
        'database "no_such_database" does not exist',
    ),
    ("postgresql+asyncpg://postgres@127.0.0.1:1/test", "is PostgreSQL running there?"),
    ("sqlite:///tellonce.db", "write sqlite+aiosqlite:///tellonce.db"),
    ("postgresql://postgres:hunter2@127.0.0.1/test", "write postgresql+asyncpg://postgres:***@"),
    ("sqlite+aiosqlite:////proc/no/such/folder/x.db", "cannot use the folder /proc/no"),
    ("mysql://db/tellonce", "write sqlite+aiosqlite:///PATH or postgresql+asyncpg://"),
]


@pytest.mark.parametrize(("url", "says"), BAD_DATABASES)
@pytest.mark.parametrize(
    "command",
    [("migrate",), ("user", "create", "zed", "--password", "s3cret-pw", "--role", "agent"),
     ("serve", "--port", "1")],
    ids=["migrate", "user-create", "serve"],
)  # fmt: skip
def test_a_bad_database_url_is_one_line_that_says_what_to_write(
    tmp_path: Path, url: str, says: str, command: tuple[str, ...]
) -> None:
    result = tellonce(*command, cwd=tmp_path, env={"TELLONCE_DATABASE_URL": url, **SECRETS})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tellonce: ") and says in lines[0], lines[0]
    assert "hunter2" not in result.stderr + result.stdout


def test_migrate_then_again(tmp_path: Path) -> None:
    assert tellonce("migrate", cwd=tmp_path).returncode == 0
    assert tellonce("migrate", cwd=tmp_path).returncode == 0


def test_serve_refuses_other_databases_without_secrets(tmp_path: Path) -> None:
    env = {"TELLONCE_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test"}
    env |= {"TELLONCE_SECRET_KEY": "", "TELLONCE_IVR_API_KEY": ""}
    result = tellonce("serve", "--port", str(free_port()), cwd=tmp_path, env=env)
    short = tellonce("serve", cwd=tmp_path, env={"TELLONCE_SECRET_KEY": "short"})
    assert short.returncode != 0 and "at least 16" in short.stderr
    assert result.returncode != 0
    assert "TELLONCE_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`tellonce serve` on a free port, once it answers; stopped on the way out."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *args],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)  # polling a port that is not open yet, with a deadline
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with serving(tmp_path, "--demo") as served:
        yield served


def test_serve_on_an_empty_database_says_how_to_make_the_first_supervisor(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as (_, proc):
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert "there is no login yet" in output
    assert "tellonce user create NAME --password PASSWORD --role supervisor" in output
    # Once there is one, the hint is gone.
    made = tellonce("user", "create", "boss", "--password", "s3cret-pw", "--role", "supervisor",
                    cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    with serving(tmp_path) as (_, proc):
        proc.terminate()
        assert "no login yet" not in proc.communicate(timeout=20)[0]


def test_serve_demo_on_a_port_in_use_says_so_before_anything_else(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = tellonce("serve", "--port", str(port), "--demo", cwd=tmp_path)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "demo data loaded" not in result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "tellonce.db").exists()


def test_serve_demo_answers_and_prints_only_demo_logins(
    demo_server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    base, proc = demo_server
    assert httpx.get(f"{base}/docs").status_code == 200
    assert httpx.get(f"{base}/").status_code == 200  # the console
    token = httpx.post(f"{base}/api/auth/token", data={"username": "super", "password": "demo"})
    assert token.status_code == 200
    # The database and its WAL, like the secrets, are readable by their owner alone.
    for name in ("tellonce.db", "tellonce.db-wal"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    proc.terminate()
    output = proc.communicate(timeout=20)[0]
    for login in ("super", "alice", "bob", "carol", "12345678", "1234", "+15551230001"):
        assert login in output
    assert "no login yet" not in output
    # The generated secrets stay in their owner-only file, never in the output.
    (secrets_file,) = tmp_path.glob("*.secrets.json")
    import json

    for value in json.loads(secrets_file.read_text()).values():
        assert value not in output


@contextlib.contextmanager
def _serve_together(
    cwd: Path, env: dict[str, str], n: int = 2
) -> Iterator[list[tuple[str, subprocess.Popen[str]]]]:
    ports = [free_port() for _ in range(n)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(port)],
            cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for port in ports
    ]  # fmt: skip
    served = [(f"http://127.0.0.1:{port}", proc) for port, proc in zip(ports, procs, strict=True)]
    try:
        deadline = time.monotonic() + 90
        waiting = list(served)
        while waiting:
            assert time.monotonic() < deadline, "the servers did not answer in 90 s"
            base, proc = waiting[0]
            if proc.poll() is not None:
                pytest.fail(f"{base} exited with {proc.returncode}:\n{proc.communicate()[0]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    waiting.pop(0)
            except httpx.TransportError:
                time.sleep(0.1)  # polling a port that is not open yet, with a deadline
        yield served
    finally:
        for _, proc in served:
            proc.terminate()
        for _, proc in served:
            proc.communicate(timeout=20)


def _the_two_share_one_centre(served: list[tuple[str, subprocess.Popen[str]]]) -> None:
    """A sign-in at one instance works at the other (the same keys), and both see the demo
    data once."""
    (first, _), (second, _) = served
    signed = httpx.post(f"{first}/api/auth/token", data={"username": "super", "password": "demo"})
    assert signed.status_code == 200, signed.text
    token = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    users = httpx.get(f"{second}/api/users", headers=token)
    assert users.status_code == 200, users.text
    assert sorted(u["username"] for u in users.json()) == ["alice", "bob", "carol", "super"]
    jane = httpx.get(f"{second}/api/customers/1", headers=token)
    assert jane.status_code == 200, jane.text
    assert len(jane.json()["recent_calls"]) == 3  # the demo's history, once


def test_two_serve_demo_started_together_on_a_fresh_database_both_serve(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    with _serve_together(tmp_path, env) as served:
        _the_two_share_one_centre(served)
    with sqlite3.connect(tmp_path / "tellonce.db") as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (13,)
        assert db.execute("SELECT count(*) FROM calls").fetchone() == (3,)


@pytest.mark.postgres
def test_two_serve_demo_started_together_on_a_fresh_postgres_both_serve(tmp_path: Path) -> None:
    reset_postgres()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    env |= {"TELLONCE_DATABASE_URL": PG_URL, **SECRETS}
    with _serve_together(tmp_path, env) as served:
        _the_two_share_one_centre(served)
