"""docs/API.md documents every route and every event, and nothing that is gone.

The routes come from the app's own OpenAPI document (built in process: no server, no database),
the events from the emit calls in app/. A new route or event without its heading fails here, and
so does the heading of one that was removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.routing import Match, Mount

from app.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parent.parent
API_MD = ROOT / "docs" / "API.md"
APP_DIR = ROOT / "app"

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
# Documented, served, and intentionally outside /openapi.json (include_in_schema=False).
OUTSIDE_SCHEMA = {
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    # The telephony platform's form-encoded webhooks, answered with TwiML (app/voice/).
    ("POST", "/voice/twilio"),
    ("POST", "/voice/twilio/status"),
}

ROUTE_HEADING = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE|WS) (/\S*)`$")
EVENT_HEADING = re.compile(r"^### `([a-z_]+\.[a-z_]+)`$")
# An event type given as a literal to uow.emit(...) or to calls.service._publish(uow, ...).
EMITTED = re.compile(r"\b(?:emit|_publish)\(\s*(?:uow\s*,\s*)?\"([a-z_]+\.[a-z_]+)\"")
# Any emit(...) call, to catch one whose type is not a literal.
EMIT_CALL = re.compile(r"\.emit\(\s*([^,)\s]+)")
# emit() calls that pass a type through from a caller whose literals EMITTED finds.
PASS_THROUGH = {("calls/service.py", "type_")}


def _headings(lines: list[str]) -> Iterator[str]:
    in_fence = False
    for line in lines:
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("### "):
            yield line.rstrip()


def _page() -> list[str]:
    return API_MD.read_text(encoding="utf-8").splitlines()


def _websocket_section(lines: list[str]) -> list[str]:
    starts = [i for i, line in enumerate(lines) if line.rstrip() == "## WebSocket"]
    assert len(starts) == 1, "docs/API.md needs exactly one '## WebSocket' section"
    start = starts[0] + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("api-docs") / "t.db"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        secret_key=SecretStr("x" * 32),
        ivr_api_key=SecretStr("y" * 32),
    )
    return create_app(settings)


def _served(app: Any, kind: str, method: str, path: str) -> bool:
    """Whether a route other than the console's static mount answers (kind, method, path)."""
    scope = {"type": kind, "path": path, "method": method, "root_path": ""}
    for route in app.routes:
        if isinstance(route, Mount):
            continue
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return True
    return False


def _listing(*titled: Any) -> str:
    """(title, items) pairs as a message, leaving out the titles with no items."""
    out = []
    for title, items in zip(titled[::2], titled[1::2], strict=True):
        if items:
            out.append(f"{title}:\n" + "".join(f"  {item}\n" for item in items))
    return "".join(out)


def test_every_heading_is_a_route_or_an_event() -> None:
    odd = [
        h
        for h in _headings(_page())
        if h.startswith("### `") and not (ROUTE_HEADING.match(h) or EVENT_HEADING.match(h))
    ]
    assert not odd, (
        "docs/API.md: headings in backticks must be '### `METHOD /path`' or '### `event.type`':\n"
        + "\n".join(odd)
    )


def test_every_route_is_documented_and_every_documented_route_is_served(app: Any) -> None:
    schema = app.openapi()
    served = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method.upper() in HTTP_METHODS
    }
    found = [m.groups() for h in _headings(_page()) if (m := ROUTE_HEADING.match(h))]
    documented = [(method, path) for method, path in found if method != "WS"]
    twice = sorted({r for r in documented if documented.count(r) > 1})
    assert not twice, f"docs/API.md documents these routes twice: {twice}"

    expected = served | OUTSIDE_SCHEMA
    missing = sorted(expected - set(documented))
    stale = sorted(set(documented) - expected)
    assert not missing and not stale, "docs/API.md and /openapi.json disagree.\n" + _listing(
        "Served but not documented (add a '### `METHOD /path`' entry)",
        [f"{m} {p}" for m, p in missing],
        "Documented but not served (remove the entry, or add it to OUTSIDE_SCHEMA here if it "
        "is served with include_in_schema=False)",
        [f"{m} {p}" for m, p in stale],
    )
    not_served = sorted(r for r in OUTSIDE_SCHEMA if not _served(app, "http", *r))
    assert not not_served, f"OUTSIDE_SCHEMA names routes the app no longer serves: {not_served}"

    sockets = [path for method, path in found if method == "WS"]
    assert sockets == ["/ws"], f"docs/API.md should document the one websocket, /ws: {sockets}"
    assert _served(app, "websocket", "GET", "/ws"), "the app no longer serves a websocket at /ws"


def _emitted_events() -> dict[str, list[str]]:
    """event type -> the files under app/ that emit it."""
    events: dict[str, list[str]] = {}
    opaque: list[str] = []
    for source in sorted(APP_DIR.rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        name = source.relative_to(APP_DIR).as_posix()
        for event in EMITTED.findall(text):
            events.setdefault(event, []).append(name)
        for argument in EMIT_CALL.findall(text):
            if not argument.startswith('"') and (name, argument) not in PASS_THROUGH:
                opaque.append(f"{name}: emit({argument}, ...)")
    assert not opaque, (
        "emit() with an event type this test cannot read; pass a string literal, or list the "
        "pass-through in PASS_THROUGH:\n" + "\n".join(opaque)
    )
    return events


def test_every_emitted_event_is_documented_and_no_other() -> None:
    emitted = _emitted_events()
    # The scan itself must work: these are emitted for sure.
    assert {"call.offered", "call.created", "agent.status", "queue.stats"} <= set(emitted), emitted
    section = _websocket_section(_page())
    documented = [m.group(1) for h in _headings(section) if (m := EVENT_HEADING.match(h))]
    twice = sorted({e for e in documented if documented.count(e) > 1})
    assert not twice, f"docs/API.md documents these events twice: {twice}"

    missing = sorted(set(emitted) - set(documented))
    stale = sorted(set(documented) - set(emitted))
    assert not missing and not stale, (
        "docs/API.md's WebSocket section and the events emitted in app/ disagree.\n"
        + _listing(
            "Emitted but not documented (add a '### `event.type`' entry)",
            [f"{e} (in {', '.join(sorted(set(emitted[e])))})" for e in missing],
            "Documented but never emitted (remove the entry)",
            stale,
        )
    )
    outside = [
        m.group(1)
        for h in _headings(_page())
        if (m := EVENT_HEADING.match(h)) and m.group(1) not in documented
    ]
    assert not outside, f"event headings outside the WebSocket section: {outside}"
