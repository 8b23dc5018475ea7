"""The `tellonce` command as a newcomer runs it: serve --demo, migrate, user create."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import free_port


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


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--demo"],
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


def test_serve_demo_answers_and_prints_only_demo_logins(
    demo_server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    base, proc = demo_server
    assert httpx.get(f"{base}/docs").status_code == 200
    assert httpx.get(f"{base}/").status_code == 200  # the console
    token = httpx.post(f"{base}/api/auth/token", data={"username": "super", "password": "demo"})
    assert token.status_code == 200
    proc.terminate()
    output = proc.communicate(timeout=20)[0]
    for login in ("super", "alice", "bob", "carol", "12345678", "1234", "+15551230001"):
        assert login in output
    # The generated secrets stay in their owner-only file, never in the output.
    (secrets_file,) = tmp_path.glob("*.secrets.json")
    import json

    for value in json.loads(secrets_file.read_text()).values():
        assert value not in output
