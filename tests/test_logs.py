"""Structured logs: one JSON object a line, the request and call ids on a request's lines, the
X-Request-ID header, and not one password, PIN, token or key in the log of a whole scenario."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from support import Api, free_port, make_settings, sqlite_url

from app import logs
from app.main import create_app

SECRET_KEY = "log-test-secret-key-7f3c9a1e5b"
IVR_KEY = "log-test-ivr-key-2d8e6b4a0c"
SUPERVISOR_PW = "Quill-Harbour-supervisor-417"
AGENT_PW = "Maple-Lantern-agent-902"
WRONG_PW = "Cobalt-Thistle-guess-553"
# Six digits: no port, id or timestamp field of the log is a six-digit number of its own.
PIN = "864297"
WRONG_PIN = "975310"


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    out_path: Path
    # (request id, method, path, status) of every request the scenario made.
    requests: list[tuple[str, str, str, int]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines() if line.strip()]


def _answers(served: Served) -> bool:
    """Whether the server came to answer (False: it stopped first), within a deadline."""
    deadline = time.monotonic() + 60
    while served.proc.poll() is None:
        assert time.monotonic() < deadline, "the server did not answer within 60 s"
        try:
            if httpx.get(f"{served.base}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.1)  # polling a port that is not open yet, with a deadline
    return False


@contextlib.contextmanager
def serving(tmp_path: Path, *extra_env: tuple[str, str]) -> Iterator[Served]:
    """`tellonce serve --demo` with its log (standard error) in a file; stopped on the way out.
    Other processes on this machine may take the free port first: then another one is tried."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    env.update(
        TELLONCE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'tellonce.db'}",
        TELLONCE_SECRET_KEY=SECRET_KEY,
        TELLONCE_IVR_API_KEY=IVR_KEY,
        **dict(extra_env),
    )
    log_path, out_path = tmp_path / "server.log", tmp_path / "server.out"
    for _ in range(5):
        port = free_port()
        with log_path.open("wb") as err, out_path.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(port)],
                cwd=tmp_path, env=env, stdout=out, stderr=err,
            )  # fmt: skip
        served = Served(f"http://127.0.0.1:{port}", proc, log_path, out_path)
        try:
            if _answers(served):
                yield served
                return
            assert "in use" in log_path.read_text(), log_path.read_text()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    pytest.fail("no free port was left free long enough, five times over")


class Client:
    """The scenario's HTTP client: notes each request's id as the server answered it."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.http = httpx.Client(base_url=served.base, timeout=10)

    def send(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        r = self.http.request(method, path, headers=headers, **kwargs)
        self.served.requests.append((r.headers["x-request-id"], method, path, r.status_code))
        return r

    def sign_in(self, username: str, password: str) -> tuple[str, int]:
        r = self.send("POST", "/api/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        self.served.tokens.append(r.json()["access_token"])
        return r.json()["access_token"], r.json()["user"]["id"]


def run_scenario(served: Served) -> int:
    """A whole call through every kind of credential; the call's id."""
    c = Client(served)
    boss, _ = c.sign_in("super", "demo")
    r = c.send(
        "POST", "/api/users", token=boss,
        json={"username": "lead-q", "password": SUPERVISOR_PW, "role": "supervisor"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    r = c.send(
        "POST", "/api/users", token=boss,
        json={"username": "agent-m", "password": AGENT_PW, "role": "agent", "skills": ["cards"]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    r = c.send(
        "POST", "/api/customers", token=boss,
        json={"name": "Pat Log", "account_number": "86420000", "pin": PIN,
              "phone_numbers": ["+15559864297"]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    lead, _ = c.sign_in("lead-q", SUPERVISOR_PW)
    agent, agent_id = c.sign_in("agent-m", AGENT_PW)
    r = c.send("POST", "/api/auth/token", data={"username": "agent-m", "password": WRONG_PW})
    assert r.status_code == 401
    assert c.send("PUT", "/api/me/status", token=agent, json={"status": "available"}).is_success

    ivr = {"Authorization": f"Bearer {IVR_KEY}"}
    r = c.send("POST", "/api/calls", headers=ivr, json={"caller_number": "+15559864297"})
    call_id: int = r.json()["id"]
    calls = f"/api/calls/{call_id}"
    r = c.send(
        "POST", f"{calls}/steps", headers=ivr,
        json={"node": "pin", "prompt": "Enter your PIN", "input": "****"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    for pin, verified in ((WRONG_PIN, False), (PIN, True)):
        r = c.send(
            "POST", f"{calls}/verify", headers=ivr,
            json={"account_number": "86420000", "pin": pin},
        )  # fmt: skip
        assert r.json()["verified"] is verified, r.text
    r = c.send(
        "POST", f"{calls}/handoff", headers=ivr,
        json={"intent": "card_lost", "collected": {}, "utterance": None, "escalate_reason": None},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert c.send("POST", f"{calls}/accept", token=agent).status_code == 200
    r = c.send("POST", f"{calls}/notes", token=agent, json={"text": "card blocked"})
    assert r.status_code == 201, r.text
    r = c.send("POST", f"{calls}/transfer", token=agent, json={"queue": "billing", "note": "fee"})
    assert r.status_code == 200, r.text
    r = c.send("POST", f"{calls}/assign", token=lead, json={"agent_id": agent_id})
    assert r.status_code == 200, r.text
    assert c.send("POST", f"{calls}/accept", token=agent).status_code == 200
    r = c.send(
        "POST", f"{calls}/wrap", token=agent,
        json={"disposition": "resolved", "sentiment": "positive"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert c.send("GET", "/api/audit", token=lead).status_code == 200
    assert c.send("GET", "/api/audit", token=agent).status_code == 403
    c.http.close()
    return call_id


def test_a_whole_scenario_logs_json_with_its_ids_and_never_a_secret(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        call_id = run_scenario(served)
        served.proc.terminate()
        served.proc.wait(timeout=20)
    lines = served.lines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(r, dict) for r in records)
    for r in records:
        assert {"time", "level", "logger", "message"} <= set(r), r
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "uvicorn.access", "tellonce.audit"} <= loggers, loggers

    by_request: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if "request_id" in r:
            by_request.setdefault(r["request_id"], []).append(r)
    for rid, method, path, status in served.requests:
        mine = by_request.get(rid)
        assert mine, f"no log line of {method} {path} (request {rid})"
        access = [r for r in mine if r["logger"] == "uvicorn.access"]
        assert [(a["method"], a["path"], a["status"]) for a in access] == [(method, path, status)]
        if path.startswith(f"/api/calls/{call_id}/"):
            assert all(r.get("call_id") == call_id for r in mine), mine
        else:
            assert all("call_id" not in r for r in mine), mine
    (failed,) = [r for r in records if r["message"] == "sign-in failed"]
    assert failed["username"] == "agent-m" and failed["client"] == "127.0.0.1"
    assert failed["request_id"] in {rid for rid, *_ in served.requests}

    # The demo's banner (standard output) names its demo logins; nothing else names any.
    log = served.log_path.read_text()
    text = log + served.out_path.read_text()
    secrets = [SUPERVISOR_PW, AGENT_PW, WRONG_PW, SECRET_KEY, IVR_KEY, *served.tokens]
    assert len(served.tokens) == 3
    for secret in secrets:
        assert secret not in text
    for pin in (PIN, WRONG_PIN):
        assert not re.search(rf"(?<![0-9A-Za-z]){pin}(?![0-9A-Za-z])", text), pin
    assert not re.search(r"(?i)\bpin\b|password|bearer|authorization|secret", log)


def test_text_format_for_a_terminal(tmp_path: Path) -> None:
    with serving(tmp_path, ("TELLONCE_LOG_FORMAT", "text")) as served:
        r = httpx.get(f"{served.base}/healthz", headers={"X-Request-ID": "plain-text-1"})
        assert r.headers["x-request-id"] == "plain-text-1"
        served.proc.terminate()
        served.proc.wait(timeout=20)
    lines = served.lines()
    assert lines and not any(line.startswith("{") for line in lines)
    (access,) = [line for line in lines if "plain-text-1" in line]
    assert "uvicorn.access" in access and '"GET /healthz HTTP/1.1" 200' in access
    assert access.endswith(" [request_id=plain-text-1]")


async def test_a_sane_request_id_is_kept_and_any_other_replaced(api: Api) -> None:
    kept = "3f2a9c1e-0b7d-4e55-9a10-2c6d8e4f1a7b"
    r = await api.http.get("/healthz", headers={"X-Request-ID": kept})
    assert r.headers["x-request-id"] == kept
    for bad in ("two words", "x" * 129, 'quote"d', "semi;colon", "<script>"):
        r = await api.http.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), bad
    r1, r2 = await api.http.get("/api/me"), await api.http.get("/api/me")
    assert r1.status_code == 401 and r1.headers["x-request-id"] != r2.headers["x-request-id"]
    # The websocket's handshake carries it too.
    async with websockets.connect(api.live.ws_url, additional_headers={"X-Request-ID": kept}) as ws:
        assert ws.response is not None and ws.response.headers["X-Request-ID"] == kept


@pytest.mark.parametrize(
    ("path", "call_id"),
    [
        ("/api/calls/42", 42),
        ("/api/calls/42/notes", 42),
        ("/api/calls", None),
        ("/api/calls/0/notes", None),
        ("/api/calls/abc", None),
        ("/api/calls/99999999999/notes", None),
        ("/api/customers/42", None),
    ],
)
def test_the_call_id_of_a_path(path: str, call_id: int | None) -> None:
    assert logs.call_id_of(path) == call_id


def test_credentials_are_masked_whatever_logged_them() -> None:
    formatter = logs.JsonLogFormatter(secrets=[SECRET_KEY])
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    message = (
        f"key {SECRET_KEY}; Authorization: Bearer abc.def-ghi; token {jwt}; "
        "hash $argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA; GET /x?user=a&password=hunter22&pin=1234"
    )
    record = logging.LogRecord("tellonce", logging.WARNING, __file__, 1, message, None, None)
    out = json.loads(formatter.format(record))["message"]
    for leaked in (SECRET_KEY, "abc.def-ghi", jwt, "aGFzaA", "hunter22", "1234"):
        assert leaked not in out
    assert "Bearer [redacted]" in out and "password=[redacted]" in out and "user=a" in out


async def test_an_unexpected_error_is_logged_with_its_request_and_call(tmp_path: Path) -> None:
    """The last-resort handler runs outside the request-id middleware, yet its line has the ids."""
    app = create_app(make_settings(sqlite_url(tmp_path / "t.db")))

    @app.get("/api/calls/{call_id}/boom")
    async def boom(call_id: int) -> None:
        raise RuntimeError("boom")

    app.router.routes.insert(0, app.router.routes.pop())  # ahead of the console's mount at /
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(logs.JsonLogFormatter())
    logger = logging.getLogger("tellonce")
    logger.addHandler(handler)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.get("/api/calls/7/boom", headers={"X-Request-ID": "boom-1"})
    finally:
        logger.removeHandler(handler)
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
    (line,) = [json.loads(x) for x in written.getvalue().splitlines()]
    assert (line["level"], line["request_id"], line["call_id"]) == ("ERROR", "boom-1", 7)
    assert "RuntimeError: boom" in line["exc_info"]
