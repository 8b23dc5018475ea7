"""Every HTTP answer carries the security headers, refusals included, and no page the server
serves needs what its Content-Security-Policy forbids (inline script or style)."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from support import DEADLINE, Api, LiveServer, make_settings

import console
from app.main import create_app

# The headers are the server's, whatever the database behind it.
on_sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

CONSOLE = Path(console.__file__).parent


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def assert_secured(response: httpx.Response) -> None:
    what = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("x-frame-options") == "DENY", what
    assert headers.get("referrer-policy") == "no-referrer", what
    assert headers.get_list("content-security-policy") == [headers["content-security-policy"]], what
    policy = directives(headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"], what
    assert policy["script-src"] == ["'self'"], what
    assert policy["style-src"] == ["'self'"], what
    assert policy["default-src"] == ["'self'"], what
    assert policy["object-src"] == ["'none'"], what
    assert policy["base-uri"] == ["'none'"], what


@pytest.fixture
def server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    return server_factory(max_body_bytes=4096)


@on_sqlite
async def test_every_kind_of_answer_carries_the_security_headers(api: Api) -> None:
    http = api.http
    supervisor = await api.login("super")
    answers = [
        await http.get("/healthz"),
        await http.get("/readyz"),
        await http.get("/openapi.json"),
        await http.get("/docs"),
        await http.get("/"),
        await http.get("/agent.html"),
        await http.get("/supervisor.html"),
        await http.get("/js/agent.js"),
        await http.get("/css/console.css"),
        await http.get("/vendor/swagger-ui/swagger-ui-bundle.js"),
        await http.get("/api/me", headers=supervisor),
        await http.get("/api/queues", headers=supervisor),
        # Refusals, from each layer that can answer one.
        await http.get("/no/such/page"),
        await http.get("/api/me"),
        await http.post("/api/auth/token", data={"username": "super", "password": "wrong"}),
        await http.get("/api/users", headers=await api.login("alice")),
        await http.post("/api/users", json={"username": 1}, headers=supervisor),
        await http.delete("/healthz"),
        await http.post("/api/calls", content=b"x" * 5000, headers=api.ivr),
    ]
    assert {r.status_code for r in answers} >= {200, 401, 403, 404, 405, 413, 422}
    for response in answers:
        assert_secured(response)


@on_sqlite
async def test_the_servers_own_answers_carry_them_too(server: LiveServer) -> None:
    # Answered by the server before any app runs: headers over the size limit.
    async with httpx.AsyncClient(base_url=server.base_url, timeout=DEADLINE) as http:
        response = await http.get("/healthz", headers={"X-Big": "a" * 40_000})
    assert response.status_code == 431
    assert_secured(response)


async def test_an_unexpected_error_carries_them_too(tmp_path: Path) -> None:
    # No input makes the server fail (tests/api/test_fuzz.py): a route that does stands in for
    # the bug, in the app as create_app builds it. Its 500 is answered outside the app's
    # middleware, by Starlette's last-resort handler.
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 't.db'}"))

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    app.router.routes.insert(0, app.router.routes.pop())  # before the console's catch-all mount

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    assert_secured(response)


class _Inline(HTMLParser):
    """What a page has that a CSP of script-src and style-src 'self' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        if "style" in names:
            self.found.append(f"<{tag} style=...>")
        self.found.extend(f"<{tag} {name}=...>" for name in names if re.fullmatch(r"on\w+", name))
        for name, value in attrs:
            if name in ("href", "src") and (value or "").lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")


def inline_code(html: str) -> list[str]:
    parser = _Inline()
    parser.feed(html)
    return parser.found


@on_sqlite
async def test_no_page_needs_inline_script_or_style(api: Api) -> None:
    pages = ["/docs", *(f"/{path.name}" for path in sorted(CONSOLE.glob("*.html")))]
    assert "/agent.html" in pages and "/supervisor.html" in pages
    for page in pages:
        response = await api.http.get(page)
        assert response.status_code == 200, page
        assert inline_code(response.text) == [], page
