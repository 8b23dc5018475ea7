"""Starting and stopping the servers under test, each in its own process, only on 127.0.0.1."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
SUPERVISOR = "bench-super"
PASSWORD = "bench-password-1"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """One server process on one port."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        url = f"http://127.0.0.1:{self.port}{path}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server on {self.port} exited; see {self.log}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server on {self.port} not ready in {START_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Deployment:
    """What a benchmark runs against: one or more instances sharing a database."""

    name: str
    servers: list[Server]
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    ivr_key: str | None = None
    floor: bool = False

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def rss_kib(self) -> int:
        return sum(s.rss_kib() for s in self.servers)

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server processes have used so far."""
        return sum(cpu_s(s.pid) for s in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _spawn(
    args: list[str], *, env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _tellonce(*args: str) -> list[str]:
    # python -m app.cli rather than the console script: the pid is then the server itself.
    return [sys.executable, "-m", "app.cli", *args]


def _run(args: list[str], *, env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _base_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def start_tellonce(
    name: str,
    *,
    postgres: bool = False,
    instances: int = 1,
    extra_env: dict[str, str] | None = None,
) -> Deployment:
    """Fresh database, a supervisor login, then `tellonce serve` once per instance."""
    if postgres:
        reset_postgres()
    workdir = Path(tempfile.mkdtemp(prefix=f"tellonce-bench-{name}-"))
    settings: dict[str, str] = {}
    ivr_key: str | None
    if postgres:
        ivr_key = secrets.token_urlsafe(24)
        settings.update(
            TELLONCE_DATABASE_URL=PG_URL,
            TELLONCE_REDIS_URL=REDIS_URL,
            TELLONCE_SECRET_KEY=secrets.token_urlsafe(32),
            TELLONCE_IVR_API_KEY=ivr_key,
        )
    else:
        settings["TELLONCE_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'tellonce.db'}"
        ivr_key = None
    settings.update(extra_env or {})
    env = _base_env(settings)
    try:
        return _start_instances(name, workdir, env, settings, ivr_key, instances)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _start_instances(
    name: str,
    workdir: Path,
    env: dict[str, str],
    settings: dict[str, str],
    ivr_key: str | None,
    instances: int,
) -> Deployment:
    _run(
        _tellonce("user", "create", SUPERVISOR, "--password", PASSWORD, "--role", "supervisor"),
        env=env,
        cwd=workdir,
    )
    if ivr_key is None:
        from app.config import Settings, resolve_ivr_api_key

        ivr_key = resolve_ivr_api_key(Settings(database_url=settings["TELLONCE_DATABASE_URL"]))
    servers = []
    try:
        for i in range(instances):
            port = free_port()
            log = workdir / f"server-{i}.log"
            args = _tellonce("serve", "--port", str(port), "--log-level", "warning")
            servers.append(Server(port, _spawn(args, env=env, cwd=workdir, log=log), log))
            # One at a time: each migrates first (under a lock), then serves.
            servers[-1].wait_ready("/readyz")
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return Deployment(name, servers, workdir, env, ivr_key)


def start_floor(*, event_bytes: int) -> Deployment:
    """The floor: bench/floor.py under uvicorn with the same options as `tellonce serve`."""
    workdir = Path(tempfile.mkdtemp(prefix="tellonce-bench-floor-"))
    port = free_port()
    log = workdir / "floor.log"
    args = [sys.executable, "-m", "bench.floor", "--port", str(port)]
    args += ["--event-bytes", str(event_bytes)]
    env = _base_env({})
    server = Server(port, _spawn(args, env=env, cwd=ROOT, log=log), log)
    try:
        server.wait_ready("/healthz")
    except BaseException:
        server.stop()
        raise
    return Deployment("floor", [server], workdir, env, ivr_key="floor", floor=True)


def reset_postgres() -> None:
    """Drop and recreate the schema public of the benchmark database."""
    import asyncio

    import asyncpg

    async def reset() -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        try:
            # Another client of the database (a test run) may hold locks: wait a little, retry.
            await conn.execute("SET lock_timeout = '10s'")
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    for attempt in range(5):
        try:
            asyncio.run(reset())
            return
        except asyncpg.PostgresError:
            if attempt == 4:
                raise
            time.sleep(2)


def postgres_available() -> bool:
    for port in (5432, 6379):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except OSError:
            return False
    return True
