"""End-to-end fixtures: a live server on a socket, headless Chromium, an IVR client.

The server runs in a thread of the test process (support.start_server, with `tellonce serve`'s
uvicorn settings), not as a `tellonce serve` process: the browser needs the socket, and the
command itself has its own tests (tests/test_cli.py, tests/ivr/). A process would cost each test
an interpreter's start and the app's imports.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import IVR_KEY, LiveServer, Templates, start_server

playwright_sync = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, BrowserContext, Page, expect  # noqa: E402

CHROMIUM = os.environ.get("TELLONCE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 720}
# Long enough that no offer times out while a test is looking at it.
OFFER_TIMEOUT_S = "120"

expect.set_options(timeout=10_000)


@dataclass
class Server:
    url: str
    live: LiveServer

    def token(self, username: str, password: str = "demo") -> str:
        response = httpx.post(
            f"{self.url}/api/auth/token", data={"username": username, "password": password}
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def api(self, username: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token(username)}"},
            timeout=10,
        )


def tellonce_command() -> list[str]:
    """The installed command, for tests that run it beside the server (`tellonce ivr`)."""
    exe = shutil.which("tellonce")
    if exe is None:
        pytest.skip("the `tellonce` command is not installed (pip install -e .)")
    return [exe]


@pytest.fixture
def server_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Extra settings for the server, named as `tellonce serve` reads them from the environment
    (TELLONCE_OFFER_TIMEOUT_S...); a test sets them with indirect parametrization."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def server(tmp_path: Path, server_env: dict[str, str], templates: Templates) -> Iterator[Server]:
    """A fresh server with the demo data, on its own SQLite file: a copy of the session's demo
    template, so no demo secret is hashed again."""
    settings: dict[str, Any] = {"offer_timeout_s": OFFER_TIMEOUT_S}
    settings.update(
        (name.removeprefix("TELLONCE_").lower(), value) for name, value in server_env.items()
    )
    db_url = templates.sqlite(tmp_path / "tellonce.db", demo=True)
    live = start_server(db_url, **settings)
    try:
        yield Server(url=live.base_url, live=live)
    finally:
        live.stop()


# One browser for the whole of tests/e2e, closed after its last test: sync Playwright keeps an
# event loop running in this thread while it is open, which would break the asyncio tests that
# run after tests/e2e.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser, server: Server) -> Iterator[Callable[..., Page]]:
    """Pages in their own browser contexts (so their own sessionStorage), closed at the end."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def open_page(viewport: dict[str, int] | None = None) -> Page:
        context = browser.new_context(viewport=viewport or VIEWPORT, base_url=server.url)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the pages: {errors}"


@pytest.fixture
def sign_in(open_page: Callable[..., Page]) -> Callable[..., Page]:
    def sign_in(username: str, password: str = "demo", **kwargs: Any) -> Page:
        page = open_page(**kwargs)
        page.goto("/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_test_id("signin-submit").click()
        expect(page.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "live")
        return page

    return sign_in


class Ivr:
    """The phone tree's side of the contract, as the IVR would drive it."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {IVR_KEY}"}, timeout=10
        )

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(path, json=body or {})
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        data: dict[str, Any] = response.json()
        return data

    def start(self, caller: str = "+15551230001") -> int:
        call_id: int = self.post("/api/calls", {"caller_number": caller})["id"]
        self.step(call_id, "language", "For English press 1. Para español oprima 2.", "1")
        return call_id

    def step(self, call_id: int, node: str, prompt: str, key: str | None) -> None:
        self.post(f"/api/calls/{call_id}/steps", {"node": node, "prompt": prompt, "input": key})

    def verify(self, call_id: int, account: str = "12345678", pin: str = "1234") -> None:
        self.step(call_id, "account", "Please enter your account number, then #.", f"{account}#")
        self.step(call_id, "pin", "Please enter your PIN, then #.", "****")
        result = self.post(f"/api/calls/{call_id}/verify", {"account_number": account, "pin": pin})
        assert result["verified"], result

    def handoff(
        self,
        call_id: int,
        *,
        key: str,
        intent: str | None = None,
        utterance: str | None = None,
        escalate_reason: str | None = None,
        collected: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self.step(call_id, "main_menu", "Balance 1, lost card 2, loans 3, a person 0.", key)
        return self.post(
            f"/api/calls/{call_id}/handoff",
            {
                "intent": intent,
                "collected": collected or {},
                "utterance": utterance,
                "escalate_reason": escalate_reason,
            },
        )

    def lost_card_call(self, collected: dict[str, str] | None = None) -> int:
        """The contract's `1,12345678#,1234#,2`: a verified English caller with a lost card."""
        call_id = self.start()
        self.verify(call_id)
        queued = self.handoff(call_id, key="2", intent="card_lost", collected=collected)
        assert queued["queue"] == "cards", queued
        return call_id


@pytest.fixture
def ivr(server: Server) -> Iterator[Ivr]:
    client = Ivr(server.url)
    yield client
    client.http.close()


def set_status(page: Page, status: str) -> None:
    page.get_by_test_id(f"status-{status}").click()
    expect(page.get_by_test_id("status-current")).to_have_attribute("data-status", status)
