"""A live Tellonce for the simulator tests: `tellonce serve --demo` as a subprocess.

The commands run through this checkout's entry point (app.cli:main, what `tellonce` is),
so the tests exercise this code whatever else is installed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
TELLONCE = [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())"]
IVR_KEY = "ivr-test-key-0123456789abcdef"
SECRET_KEY = "secret-test-key-0123456789abcdef0123456789"
STARTUP_DEADLINE_S = 90.0
COMMAND_DEADLINE_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's TELLONCE_ settings, with this checkout first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


@dataclass
class Centre:
    """A running server and the ways a test talks to it: as the simulator, and as people."""

    url: str
    workdir: Path
    process: subprocess.Popen[bytes]
    log: Path
    http: httpx.Client = field(init=False)
    _tokens: dict[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def ivr(self, *args: str, api_key: str | None = IVR_KEY) -> subprocess.CompletedProcess[str]:
        """Run `tellonce ivr --server URL ARGS...` to its end."""
        env = command_env() if api_key is None else command_env(TELLONCE_IVR_API_KEY=api_key)
        return subprocess.run(
            [*TELLONCE, "ivr", "--server", self.url, *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_DEADLINE_S,
            check=False,
        )

    def login(self, username: str) -> tuple[str, int]:
        if username not in self._tokens:
            r = self.http.post("/api/auth/token", data={"username": username, "password": "demo"})
            assert r.status_code == 200, r.text
            self._tokens[username] = (r.json()["access_token"], r.json()["user"]["id"])
        return self._tokens[username]

    def headers(self, username: str | None) -> dict[str, str]:
        token = IVR_KEY if username is None else self.login(username)[0]
        return {"Authorization": f"Bearer {token}"}

    def get(self, path: str, username: str | None = "super") -> Any:
        r = self.http.get(path, headers=self.headers(username))
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def send(self, method: str, path: str, username: str | None, body: Any = None) -> Any:
        r = self.http.request(method, path, json=body, headers=self.headers(username))
        assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def start_centre(workdir: Path, **settings: str) -> Centre:
    """Start `tellonce serve --demo` (SQLite file in workdir) and wait until it answers;
    settings: more TELLONCE_ variables for the server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*TELLONCE, "serve", "--port", str(port), "--demo"],
            cwd=workdir,
            env=command_env(
                TELLONCE_IVR_API_KEY=IVR_KEY, TELLONCE_SECRET_KEY=SECRET_KEY, **settings
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    centre = Centre(url=url, workdir=workdir, process=process, log=log)
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while True:
        if process.poll() is not None:
            centre.stop()
            raise RuntimeError(
                f"the server exited with {process.returncode}:\n{log.read_text(errors='replace')}"
            )
        try:
            if centre.http.get("/docs", timeout=2).status_code == 200:
                return centre
        except httpx.TransportError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            centre.stop()
            raise RuntimeError(f"no answer from {url}/docs in {STARTUP_DEADLINE_S} s")
        time.sleep(0.1)  # the interval between two looks at the port, not a wait for an event
