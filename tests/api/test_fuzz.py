"""No route answers 500 to any input: hypothesis throws bodies, ids and credentials at a live server.

One live server per database, for the whole module. For each family of routes, hypothesis draws a route, a kind of
credentials (none, bad, IVR key, agent, supervisor), a path id (real ones, out of range, not
numbers at all) and a body: random JSON (wrong types, nesting, huge strings and numbers, unicode,
lone surrogates, NaN), raw bytes, or a valid body with fields replaced, added or dropped so that
the request gets past the first checks. Every answer must be below 500, and JSON with `detail`
when it is an error.

The draws are derandomized: the same inputs run every time, so a failure is reproducible and the
test is not flaky. To explore new inputs locally, set TELLONCE_FUZZ_SEED (an integer) and
TELLONCE_FUZZ_EXAMPLES (60 per family of routes by default).

Strings holding U+0000 are left out on PostgreSQL only: that known bug has its own strict xfail
in test_errors.py (test_a_nul_character_is_never_a_500).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from support import DEADLINE, PG_URL, LiveServer, reset_postgres, start_server

EXAMPLES = int(os.environ.get("TELLONCE_FUZZ_EXAMPLES", "60"))
HUGE_INTS = [2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**20, 10**400, -1, 0]
WEIRD_IDS = [
    "abc",
    "99999999999999999999",
    "2147483648",
    "1.5",
    "-0",
    "1e3",
    "0x1",
    "nan",
    "inf",
    "%00",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: int() reads it as 3
    "\uff11",  # FULLWIDTH DIGIT ONE
    " 1",
    "1 ",
    "+1",
    "null",
    "[]",
    "{}",
    "9" * 5000,  # more digits than int() reads by default
]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One live server per database for the whole module, like the shared db_url fixture's."""
    from app.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'tellonce.db'}"
    else:
        reset_postgres()
        url = PG_URL
    upgrade(url)
    # Long offers: the state the fuzzer reaches does not change under it between two requests.
    server = start_server(url, offer_timeout_s=300)
    yield server
    server.stop()


@dataclass
class Route:
    method: str
    path: str  # "{id}" is replaced by a drawn path id
    body: dict[str, Any] | None = None  # a valid body, for mutations; None: no body expected
    form: bool = False


def strategies(nul: bool) -> dict[str, st.SearchStrategy[Any]]:
    chars = st.characters() if nul else st.characters(exclude_characters="\x00")
    text = st.text(chars, max_size=40)
    huge_text = st.sampled_from([1_000, 70_000, 1_000_000]).map(lambda n: "9" * n)
    odd_text = st.sampled_from(
        ["\ud800", "a\udfffb", "\ufeff", "\u202e", "💳" * 50, "ß" * 129, "+1555", "NaN", "-0"]
    )
    if nul:
        odd_text = odd_text | st.just("\x00")
    strings = text | huge_text | odd_text
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.sampled_from(HUGE_INTS)
        | st.floats()
        | strings
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=12,
    )
    return {"text": text, "odd": odd_text, "strings": strings, "values": values}


def body_strategy(route: Route, s: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    raw = (st.binary(max_size=64) | st.just(b"9" * 5000) | st.just(b'{"a":' * 2000)).map(
        lambda b: ("raw", b)
    )
    anything = s["values"].map(lambda v: ("json", v))
    if route.body is None:
        return st.none().map(lambda _: ("none", None)) | anything | raw
    valid = route.body

    @st.composite
    def mutated(draw: st.DrawFn) -> tuple[str, Any]:
        body = dict(valid)
        for key in list(body):
            choice = draw(st.sampled_from(["keep", "keep", "replace", "drop"]))
            if choice == "replace":
                body[key] = draw(s["values"])
            elif choice == "drop":
                del body[key]
        if draw(st.booleans()):
            body[draw(s["text"])] = draw(s["values"])
        return ("json", body)

    return mutated() | mutated() | anything | raw | st.just(("json", valid))


def id_strategy(known: list[int]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(known).map(str),
        st.sampled_from(known).map(str),
        st.integers(-5, 60).map(str),
        st.sampled_from(HUGE_INTS).map(str),
        st.sampled_from(WEIRD_IDS),
        st.text(st.characters(codec="utf-8", exclude_characters="/?#"), max_size=12),
    ).map(lambda v: quote(v, safe=""))


class Fuzzer:
    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.http = httpx.Client(base_url=live.base_url, timeout=DEADLINE)
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}
        for name in ("super", "alice", "bob", "carol"):
            r = self.http.post("/api/auth/token", data={"username": name, "password": "demo"})
            assert r.status_code == 200, r.text
            self.tokens[name] = r.json()["access_token"]
            self.ids[name] = r.json()["user"]["id"]
        self.creds: dict[str, dict[str, str]] = {
            "none": {},
            "bad": {"Authorization": "Bearer not-a-token"},
            "basic": {"Authorization": "Basic YWxpY2U6ZGVtbw=="},
            "ivr": {"Authorization": f"Bearer {live.ivr_key}"},
            "agent": self.auth("alice"),
            "other agent": self.auth("bob"),
            "supervisor": self.auth("super"),
        }
        self.calls = self.make_calls()

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def ok(self, method: str, path: str, who: dict[str, str], body: Any = None) -> Any:
        r = self.http.request(method, path, json=body, headers=who)
        assert r.status_code < 300, (path, r.text)
        return r.json()

    def make_calls(self) -> list[int]:
        """Calls in every state, so that drawn ids reach every branch of the call routes."""
        ivr = self.creds["ivr"]
        # Agents first: a handoff offers its call in its own request, to whoever is free then.
        self.ok("PUT", "/api/me/status", self.auth("alice"), {"status": "available"})
        self.ok("PUT", "/api/me/status", self.auth("carol"), {"status": "available"})
        made = []
        for caller, intent in [
            ("+15551230001", None),  # stays in the tree
            ("+15551230002", "loans"),  # queued (bob is offline)
            ("+15551230003", "card_lost"),  # offered to alice
            ("+15551230004", "billing"),  # offered to carol (alice holds an offer)
        ]:
            call_id = self.ok("POST", "/api/calls", ivr, {"caller_number": caller})["id"]
            self.ok(
                "POST",
                f"/api/calls/{call_id}/verify",
                ivr,
                {"account_number": "12345678", "pin": "1234"},
            )
            if intent is not None:
                self.ok("POST", f"/api/calls/{call_id}/handoff", ivr, {"intent": intent})
            made.append(call_id)
        self.ok("POST", f"/api/calls/{made[3]}/accept", self.auth("carol"))  # connected
        ended = self.ok("POST", "/api/calls", ivr, {"caller_number": "+15551230005"})["id"]
        self.ok("POST", f"/api/calls/{ended}/hangup", ivr)  # abandoned
        return [*made, ended]

    def routes(self) -> dict[str, list[Route]]:
        agent_id = self.ids["bob"]
        return {
            "users": [
                Route("POST", "/api/auth/token", {"username": "alice", "password": "x"}, form=True),
                Route(
                    "POST",
                    "/api/users",
                    {
                        "username": "zoe",
                        "password": "zoe-pw-123",
                        "display_name": "Zoe",
                        "role": "agent",
                        "skills": ["billing"],
                    },
                ),
                Route("GET", "/api/users"),
                Route("GET", "/api/me"),
                Route("PUT", "/api/me/status", {"status": "away"}),
                Route("GET", "/api/agents"),
                Route("GET", "/api/queues"),
                Route("GET", "/api/escalations"),
            ],
            "customers": [
                Route(
                    "POST",
                    "/api/customers",
                    {
                        "name": "Fuzz",
                        "account_number": "55555555",
                        "pin": "1234",
                        "phone_numbers": ["+15558880000"],
                        "segment": "vip",
                        "language": "en",
                    },
                ),
                Route("GET", "/api/customers/{id}"),
            ],
            "ivr": [
                Route("POST", "/api/calls", {"caller_number": "+15551230001", "language": "en"}),
                Route(
                    "POST",
                    "/api/calls/{id}/verify",
                    {"account_number": "12345678", "pin": "1234"},
                ),
                Route("POST", "/api/calls/{id}/steps", {"node": "n", "prompt": "p", "input": "1"}),
                Route(
                    "POST",
                    "/api/calls/{id}/handoff",
                    {"intent": "billing", "collected": {"k": "v"}, "utterance": "help"},
                ),
                Route("POST", "/api/calls/{id}/hangup"),
                Route("POST", "/api/calls/{id}/survey", {"csat": 3, "had_to_repeat": True}),
                Route("GET", "/api/calls/{id}/position"),
            ],
            "agents": [
                Route("GET", "/api/calls/{id}"),
                Route("POST", "/api/calls/{id}/accept"),
                Route("POST", "/api/calls/{id}/reject"),
                Route("POST", "/api/calls/{id}/notes", {"text": "note"}),
                Route("POST", "/api/calls/{id}/transfer", {"queue": "cards", "note": "n"}),
                Route("POST", "/api/calls/{id}/transfer", {"agent_id": agent_id, "note": "n"}),
                Route("POST", "/api/calls/{id}/escalate", {"reason": "fraud"}),
                Route(
                    "POST",
                    "/api/calls/{id}/wrap",
                    {"disposition": "resolved", "sentiment": "neutral", "notes": "n"},
                ),
                Route(
                    "POST",
                    "/api/calls/{id}/wrap",
                    {
                        "disposition": "follow_up",
                        "sentiment": "neutral",
                        "promise": {"text": "call back", "due": "2099-01-01"},
                    },
                ),
                Route("POST", "/api/calls/{id}/asked-again", {"field": "identity"}),
                Route("POST", "/api/promises/{id}/kept"),
            ],
            "supervisors": [
                Route("POST", "/api/calls/{id}/assign", {"agent_id": agent_id}),
                Route("GET", "/api/calls"),
                Route("GET", "/api/promises"),
            ],
        }

    def send(self, route: Route, who: str, path_id: str, body: tuple[str, Any], query: Any) -> None:
        path = route.path.replace("{id}", path_id)
        headers = dict(self.creds[who])
        kind, value = body
        kwargs: dict[str, Any] = {}
        if route.form and kind == "json" and isinstance(value, dict):
            kwargs["data"] = {str(k): json.dumps(v) if not isinstance(v, str) else v
                              for k, v in value.items()}  # fmt: skip
        elif kind == "json":
            headers["content-type"] = "application/json"
            kwargs["content"] = json.dumps(value).encode()  # ASCII: lone surrogates escaped
        elif kind == "raw":
            headers["content-type"] = "application/json"
            kwargs["content"] = value
        if query:
            kwargs["params"] = query
        try:
            r = self.http.request(route.method, path, headers=headers, **kwargs)
        except UnicodeEncodeError:
            return  # a form value httpx itself cannot encode never reaches the server
        where = f"{route.method} {path} as {who} with {kind} {str(value)[:300]!r} {query!r}"
        assert r.status_code < 500, f"{where}\n-> {r.status_code} {r.text[:500]}"
        if r.status_code >= 400:
            assert r.headers.get("content-type", "").startswith("application/json"), where
            assert "detail" in r.json(), f"{where}\n-> {r.text[:500]}"

    def fuzz(self, family: str, nul: bool) -> None:
        routes = self.routes()[family]
        s = strategies(nul)
        queries = st.none() | st.dictionaries(
            st.sampled_from(["state", "queue", "limit", "x"]), s["text"] | s["odd"], max_size=3
        )

        @st.composite
        def request(draw: st.DrawFn) -> tuple[Route, str, str, tuple[str, Any], Any]:
            route = draw(st.sampled_from(routes))
            who = draw(st.sampled_from(sorted(self.creds)))
            path_id = draw(id_strategy(self.calls))
            body = draw(body_strategy(route, s))
            query = draw(queries) if route.method == "GET" else None
            return route, who, path_id, body, query

        run = settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize="TELLONCE_FUZZ_SEED" not in os.environ,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )

        @run
        @given(request())
        def check(drawn: tuple[Route, str, str, tuple[str, Any], Any]) -> None:
            self.send(*drawn)

        if "TELLONCE_FUZZ_SEED" in os.environ:
            check = seed(int(os.environ["TELLONCE_FUZZ_SEED"] or 0))(check)
        check()


@pytest.fixture(scope="module")
def fuzzer(live: LiveServer) -> Any:
    f = Fuzzer(live)
    yield f
    f.http.close()


@pytest.mark.parametrize("family", ["users", "customers", "ivr", "agents", "supervisors"])
def test_no_route_answers_500(fuzzer: Fuzzer, family: str) -> None:
    nul = not fuzzer.live.settings.database_url.startswith("postgresql")
    fuzzer.fuzz(family, nul)
    # The server is still well after the barrage.
    assert fuzzer.http.get("/healthz").status_code == 200
    assert fuzzer.http.get("/api/me", headers=fuzzer.auth("super")).status_code == 200
