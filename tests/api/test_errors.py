"""Refusals the committed route tests leave out, each with nothing changed after it.

test_route_errors.py has every call route's 404, the first 409s and a few 422s; this adds what
a client would still meet: a hidden object that answers exactly like a missing one, a call that
was once the agent's, assign and IVR refusals, bodies that are not JSON objects, malformed
fields that must not spend a verification try, NUL characters, and secrets that never leave.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import pytest
from support import SECRET, Api, LiveServer, Ws

# Offers must not time out while a test looks at them: a refusal then changes nothing.
LONG_OFFER_S = 300.0
UNKNOWN_ID = 999_999
# Timestamps and fractional seconds may spell any digits, a PIN's too: they are cut out first.
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)?")
FRACTION = re.compile(r"\d+\.\d+(e-?\d+)?")

STEP: dict[str, Any] = {"node": "menu", "prompt": "Lost card press 2", "input": "2"}
HANDOFF: dict[str, Any] = {
    "intent": "card_lost",
    "collected": {},
    "utterance": None,
    "escalate_reason": None,
}
SURVEY: dict[str, Any] = {"csat": 4, "had_to_repeat": False}
VERIFY: dict[str, Any] = {"account_number": "12345678", "pin": "1234"}
NOTE: dict[str, Any] = {"text": "Card blocked already."}
TRANSFER: dict[str, Any] = {"queue": "billing", "note": "Wants a refund."}
ESCALATE: dict[str, Any] = {"reason": "fraud_suspected"}
WRAP: dict[str, Any] = {
    "disposition": "resolved",
    "sentiment": "neutral",
    "notes": "Sent a new card.",
}
USER: dict[str, Any] = {
    "username": "dave",
    "password": "secret-pw",
    "display_name": "Dave Day",
    "role": "agent",
    "skills": ["loans"],
}
CUSTOMER: dict[str, Any] = {
    "name": "Zed Zero",
    "account_number": "77777777",
    "pin": "908172",
    "phone_numbers": ["+15559990001"],
    "segment": "standard",
    "language": "en",
}
AGENT_CALL_ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "accept", None),
    ("POST", "reject", None),
    ("POST", "notes", NOTE),
    ("POST", "transfer", TRANSFER),
    ("POST", "escalate", ESCALATE),
    ("POST", "wrap", WRAP),
]
# Not a JSON object at all: a list, scalars, JSON null, broken JSON, no body, not UTF-8.
NOT_OBJECTS: list[Any] = [[], "text", 1, True, b"null", b"{", b"", b'{"a":}', b"\xff\xfe"]
MISSING: Any = object()


@pytest.fixture
def server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    return server_factory(offer_timeout_s=LONG_OFFER_S)


# --- helpers ------------------------------------------------------------------------------------


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not MISSING}


def call_path(call_id: int | str, action: str = "") -> str:
    return f"/api/calls/{call_id}" + (f"/{action}" if action else "")


async def send(
    api: Api, method: str, path: str, who: str | None, body: Any = None
) -> httpx.Response:
    """who: a username, None for the IVR key. bytes are sent as they are, as JSON."""
    headers = dict(api.ivr if who is None else await api.login(who))
    if isinstance(body, bytes):
        headers["content-type"] = "application/json"
        return await api.http.request(method, path, content=body, headers=headers)
    return await api.http.request(method, path, json=body, headers=headers)


async def refused(
    api: Api, method: str, path: str, who: str | None, body: Any, status: int
) -> httpx.Response:
    r = await send(api, method, path, who, body)
    assert r.status_code == status, (method, path, body, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert r.json()["detail"], r.text
    if isinstance(body, dict) and "bogus" in body:
        assert "bogus" in json.dumps(r.json()["detail"]), r.text  # the refused field is named
    return r


def settled(call: dict[str, Any]) -> dict[str, Any]:
    """The call without what grows by itself while it sits in the tree or a queue: its effort's
    seconds and the score made of them (its counts may not change)."""
    for grows in ("ivr_seconds", "wait_seconds", "score"):
        call["effort"].pop(grows)
    return call


async def snapshot(api: Api, call_id: int | None = None) -> dict[str, Any]:
    """What a refusal must leave as it was: the call's context and every user's status."""
    r = await api.http.get("/api/users", headers=await api.login("super"))
    assert r.status_code == 200, r.text
    state: dict[str, Any] = {"users": {u["username"]: u["status"] for u in r.json()}}
    if call_id is not None:
        call = await api.call(call_id)
        call.pop("wait_s")  # a waiting caller's wait grows by itself: not a change
        state["call"] = settled(call)
    return state


async def refuse_each(
    api: Api, method: str, path: str, who: str | None, bodies: list[Any], call_id: int | None
) -> None:
    before = await snapshot(api, call_id)
    for body in bodies:
        await refused(api, method, path, who, body, 422)
    assert await snapshot(api, call_id) == before


async def available(api: Api, ws: Any, name: str) -> Ws:
    client = await ws(name)
    await api.set_status(name, "available")
    return client


async def connected_to(api: Api, client: Ws, name: str, **kwargs: Any) -> int:
    call_id = await api.new_call(**kwargs)
    await client.next("call.offered", call_id=call_id)
    r = await api.post(f"/api/calls/{call_id}/accept", name)
    assert r.status_code == 200, r.text
    return call_id


# --- 404 and 409 -------------------------------------------------------------------------------


async def test_a_hidden_call_or_customer_answers_like_a_missing_one(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    await api.set_status("bob", "available")  # bob is free, but the call was never his
    before = await snapshot(api, call_id)
    customer_id = before["call"]["customer"]["id"]
    # Nothing tells bob that the call or its customer exist: the same 404 as for none.
    for path, hidden_id in [("/api/calls/{}", call_id), ("/api/customers/{}", customer_id)]:
        hidden = await refused(api, "GET", path.format(hidden_id), "bob", None, 404)
        missing = await refused(api, "GET", path.format(UNKNOWN_ID), "bob", None, 404)
        assert hidden.json() == missing.json()
        assert "Jane" not in hidden.text and "12345678" not in hidden.text
    # Nor does his list of calls.
    r = await send(api, "GET", "/api/calls", "bob")
    assert r.status_code == 200 and r.json() == []
    assert await snapshot(api, call_id) == before


async def test_a_call_no_longer_hers_is_409_but_still_readable(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    assert (await api.post(f"/api/calls/{call_id}/reject", "alice")).status_code == 200
    before = await snapshot(api, call_id)
    assert before["call"]["state"] == "queued" and before["users"]["alice"] == "available"
    # Alice saw it once, so it is visible to her (409, not 404), but no longer hers to act on:
    # a late click on accept does not take back a call she rejected.
    for method, action, body in AGENT_CALL_ROUTES:
        await refused(api, method, call_path(call_id, action), "alice", body, 409)
    assert (await send(api, "GET", call_path(call_id), "alice")).status_code == 200
    r = await send(api, "GET", "/api/calls", "alice")
    assert [c["id"] for c in r.json()] == [call_id]
    assert await snapshot(api, call_id) == before


async def test_assign_refusals_and_an_away_agent(api: Api) -> None:
    queued = await api.new_call(intent="loans")  # loans: only bob, who is offline
    in_ivr = await api.new_call(handoff=False)
    for name in ("carol", "super"):
        await api.login(name)
    await api.set_status("carol", "away")  # signed in and free: a valid target

    async def no_change(call_id: int, agent_id: Any, status: int) -> None:
        before = await snapshot(api, call_id)
        body = {"agent_id": agent_id}
        await refused(api, "POST", call_path(call_id, "assign"), "super", body, status)
        assert await snapshot(api, call_id) == before

    await no_change(in_ivr, api.ids["carol"], 409)  # still in the phone tree
    await no_change(queued, UNKNOWN_ID, 404)  # nobody
    # Carol is away but signed in: the call is offered to her at once.
    r = await api.post(f"/api/calls/{queued}/assign", "super", {"agent_id": api.ids["carol"]})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "offered" and r.json()["agent_id"] == api.ids["carol"]
    assert (await snapshot(api))["users"]["carol"] == "offered"


async def test_ivr_refusals_are_409_and_change_nothing(api: Api, ws: Any) -> None:
    # A second handoff of a queued call (an IVR retry) neither moves nor requeues it.
    queued = await api.new_call(intent="loans")  # loans: only bob, who stays offline
    before = await snapshot(api, queued)
    await refused(
        api, "POST", call_path(queued, "handoff"), None, with_(HANDOFF, intent="billing"), 409
    )
    await refused(api, "POST", call_path(queued, "verify"), None, VERIFY, 409)
    # No survey before the caller reached an agent, in the tree or queued.
    await refused(api, "POST", call_path(queued, "survey"), None, SURVEY, 409)
    in_ivr = await api.new_call(handoff=False)
    await refused(api, "POST", call_path(in_ivr, "survey"), None, SURVEY, 409)
    assert await snapshot(api, queued) == before
    # A caller who hung up is never queued again, nor offered to anyone.
    assert (await api.post(f"/api/calls/{queued}/hangup", None)).status_code == 200
    before = await snapshot(api, queued)
    assert before["call"]["state"] == "abandoned"
    for action, body in [("steps", STEP), ("handoff", HANDOFF), ("verify", VERIFY)]:
        await refused(api, "POST", call_path(queued, action), None, body, 409)
    await refused(api, "POST", call_path(queued, "survey"), None, SURVEY, 409)
    assert await snapshot(api, queued) == before
    # A survey is taken once, after the agent: a second one does not overwrite the first.
    alice = await available(api, ws, "alice")
    call_id = await connected_to(api, alice, "alice")
    assert (await api.post(f"/api/calls/{call_id}/wrap", "alice", WRAP)).status_code == 200
    assert (await api.post(f"/api/calls/{call_id}/survey", None, SURVEY)).status_code == 200
    before = await snapshot(api, call_id)
    assert before["call"]["csat"] == 4
    await refused(api, "POST", call_path(call_id, "survey"), None, with_(SURVEY, csat=1), 409)
    assert await snapshot(api, call_id) == before


# --- 422 ---------------------------------------------------------------------------------------


async def test_every_error_is_json_and_a_non_object_body_is_422_everywhere(
    api: Api, ws: Any
) -> None:
    alice = await available(api, ws, "alice")
    connected = await connected_to(api, alice, "alice")
    in_ivr = await api.new_call(handoff=False, verify=None, steps=[])
    routes: list[tuple[str, str, str | None, int | None]] = [
        ("POST", "/api/users", "super", None),
        ("POST", "/api/customers", "super", None),
        ("PUT", "/api/me/status", "alice", None),
        ("POST", "/api/calls", None, None),
        *[("POST", call_path(in_ivr, a), None, in_ivr) for a in ("verify", "steps", "handoff")],
        *[
            ("POST", call_path(connected, a), "alice", connected)
            for a in ("notes", "transfer", "escalate", "wrap")
        ],
        ("POST", call_path(connected, "assign"), "super", connected),
    ]
    calls_before = [settled(c) for c in (await send(api, "GET", "/api/calls", "super")).json()]
    for method, path, who, call_id in routes:
        await refuse_each(api, method, path, who, NOT_OBJECTS, call_id)
    calls_after = (await send(api, "GET", "/api/calls", "super")).json()
    assert [settled(c) for c in calls_after] == calls_before
    r = await send(api, "GET", "/api/users", "super")
    assert "dave" not in [u["username"] for u in r.json()]
    # Errors outside the routes' own checks are JSON with detail too.
    cases: list[tuple[str, str, dict[str, str], int]] = [
        ("GET", "/api/me", {"Authorization": "Basic YWxpY2U6ZGVtbw=="}, 401),
        ("GET", "/api/me", {"Authorization": "Bearer"}, 401),
        ("GET", "/api/api/nothing", await api.login("alice"), 404),
        ("PUT", "/api/calls", await api.login("super"), 405),
        ("DELETE", "/api/users", await api.login("super"), 405),
    ]
    for method, path, headers, status in cases:
        r = await api.http.request(method, path, headers=headers)
        assert r.status_code == status, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/json"), (path, r.headers)
        assert r.json()["detail"], r.text


async def test_malformed_ivr_fields_are_422_and_spend_no_try(api: Api) -> None:
    calls_before = len((await send(api, "GET", "/api/calls", "super")).json())
    call = {"caller_number": "+15559990002", "language": "en"}
    bad_calls = [
        with_(call, bogus=1),
        with_(call, caller_number="+0123456789"),
        with_(call, caller_number="+1555abc0002"),
        with_(call, caller_number=""),
        with_(call, caller_number=15559990002),
        with_(call, caller_number=None),
        with_(call, caller_number=MISSING),
    ]
    await refuse_each(api, "POST", "/api/calls", None, bad_calls, None)
    assert len((await send(api, "GET", "/api/calls", "super")).json()) == calls_before
    call_id = await api.new_call(verify=None, handoff=False, steps=[])

    bad_verify = [
        with_(VERIFY, bogus=1),
        with_(VERIFY, pin="****"),  # the masked PIN of the step log, posted by mistake
        with_(VERIFY, pin="12a4"),
        with_(VERIFY, pin=1234),
        with_(VERIFY, pin=None),
        with_(VERIFY, account_number="1234567a"),
        with_(VERIFY, account_number=12345678),
        with_(VERIFY, account_number=MISSING),
    ]
    await refuse_each(api, "POST", call_path(call_id, "verify"), None, bad_verify, call_id)
    # None of those was a try: the first real failure leaves two.
    r = await api.post(call_path(call_id, "verify"), None, with_(VERIFY, pin="0000"))
    assert r.json() == {"verified": False, "attempts_left": 2, "locked": False}

    bad_steps = [
        with_(STEP, node=MISSING),
        with_(STEP, node="has space"),
        with_(STEP, prompt=MISSING),
        with_(STEP, prompt=5),
        with_(STEP, input=["1"]),
    ]
    await refuse_each(api, "POST", call_path(call_id, "steps"), None, bad_steps, call_id)

    bad_handoffs = [
        with_(HANDOFF, bogus=1),
        with_(HANDOFF, intent=7),
        with_(HANDOFF, collected={"k": {"nested": "v"}}),
        with_(HANDOFF, collected=["k", "v"]),
        with_(HANDOFF, utterance=["words"]),
    ]
    await refuse_each(api, "POST", call_path(call_id, "handoff"), None, bad_handoffs, call_id)
    # The controls: the call was still in the tree, untouched, and takes the valid bodies.
    assert (await api.post(call_path(call_id, "steps"), None, STEP)).status_code == 201
    r = await api.post(call_path(call_id, "handoff"), None, HANDOFF)
    assert r.status_code == 200 and r.json()["queue"] == "cards"


async def test_malformed_agent_and_supervisor_fields_are_422(api: Api, ws: Any) -> None:
    alice = await available(api, ws, "alice")
    call_id = await connected_to(api, alice, "alice")
    await api.login("carol")
    await api.set_status("carol", "away")  # a valid transfer target
    carol = api.ids["carol"]
    huge = 10**20

    bad_notes = [{"text": "   "}, {"text": 5}, {"text": None}, {}]
    await refuse_each(api, "POST", call_path(call_id, "notes"), "alice", bad_notes, call_id)
    bad_transfers = [
        {},
        {"queue": None, "agent_id": None},
        {"queue": ""},
        {"agent_id": 0},
        {"agent_id": -1},
        {"agent_id": huge},
        {"agent_id": "carol"},
        {"agent_id": 1.5},
        {"agent_id": carol, "bogus": 1},
    ]
    await refuse_each(api, "POST", call_path(call_id, "transfer"), "alice", bad_transfers, call_id)
    bad_escalations = [{"reason": ""}, {"reason": None}, {"reason": 1}, {"reason": "x", "bogus": 1}]
    await refuse_each(
        api, "POST", call_path(call_id, "escalate"), "alice", bad_escalations, call_id
    )
    bad_wraps = [
        with_(WRAP, bogus=1),
        with_(WRAP, disposition="RESOLVED"),
        with_(WRAP, disposition=None),
        with_(WRAP, disposition=MISSING),
        with_(WRAP, sentiment=MISSING),
        with_(WRAP, notes=["n"]),
    ]
    await refuse_each(api, "POST", call_path(call_id, "wrap"), "alice", bad_wraps, call_id)
    bad_assigns = [{}, {"agent_id": None}, {"agent_id": huge}, {"agent_id": carol, "bogus": 1}]
    await refuse_each(api, "POST", call_path(call_id, "assign"), "super", bad_assigns, call_id)
    # The controls: the call was connected and untouched all along, and takes the valid bodies.
    assert (await api.post(call_path(call_id, "notes"), "alice", NOTE)).status_code == 201
    r = await api.post(call_path(call_id, "wrap"), "alice", WRAP)
    assert r.status_code == 200 and r.json()["state"] == "ended"
    assert [n["text"] for n in r.json()["notes"]] == [NOTE["text"], WRAP["notes"]]


async def test_every_422_is_a_list_of_problems_naming_their_place(api: Api, ws: Any) -> None:
    """Values well formed but naming nothing here answer as the framework's own 422s do."""
    alice = await available(api, ws, "alice")
    call_id = await connected_to(api, alice, "alice")
    refusals = [
        (
            await api.http.post(
                "/api/calls",
                json={"caller_number": "+15551234567", "language": "fr"},
                headers=api.ivr,
            ),
            ["body", "language"],
        ),
        (
            await api.post(call_path(call_id, "transfer"), "alice", {"queue": "mortgages"}),
            ["body", "queue"],
        ),
        (
            await api.post(call_path(call_id, "transfer"), "alice", {"agent_id": api.ids["alice"]}),
            ["body", "agent_id"],
        ),
    ]
    for r, loc in refusals:
        assert r.status_code == 422, r.text
        [problem] = r.json()["detail"]
        assert problem["loc"] == loc and problem["msg"] and problem["type"] == "value_error"
    assert (await api.call(call_id))["state"] == "connected"


# --- no 500, JSON errors, no secrets -------------------------------------------------------------

NUL = "a\x00b"


async def test_a_nul_character_is_never_a_500(api: Api, ws: Any) -> None:
    # SQLite stores U+0000; PostgreSQL refuses it, and the route then answers 422.
    alice = await available(api, ws, "alice")
    on_alice = await connected_to(api, alice, "alice")  # cards
    carol = await available(api, ws, "carol")
    on_carol = await connected_to(api, carol, "carol", intent="billing")
    in_ivr = [await api.new_call(handoff=False) for _ in range(2)]
    sup = await api.login("super")
    # (case, method, path, who, JSON body); who None is the IVR key.
    cases: list[tuple[str, str, str, str | None, Any]] = [
        ("user display_name", "POST", "/api/users", "super", with_(USER, display_name=NUL)),
        ("customer name", "POST", "/api/customers", "super", with_(CUSTOMER, name=NUL)),
        ("step prompt", "POST", call_path(in_ivr[0], "steps"), None, with_(STEP, prompt=NUL)),
        ("step input", "POST", call_path(in_ivr[0], "steps"), None, with_(STEP, input=NUL)),
        (
            "handoff utterance",
            "POST",
            call_path(in_ivr[0], "handoff"),
            None,
            with_(HANDOFF, intent=None, utterance=NUL),
        ),
        (
            "handoff collected",
            "POST",
            call_path(in_ivr[1], "handoff"),
            None,
            with_(HANDOFF, collected={"k": NUL}),
        ),
        ("note text", "POST", call_path(on_alice, "notes"), "alice", {"text": NUL}),
        (
            "transfer note",
            "POST",
            call_path(on_alice, "transfer"),
            "alice",
            {"queue": "loans", "note": NUL},
        ),
        ("wrap notes", "POST", call_path(on_carol, "wrap"), "carol", with_(WRAP, notes=NUL)),
    ]
    answers: dict[str, httpx.Response | str] = {}

    async def attempt(case: str, make: Callable[[], Awaitable[httpx.Response]]) -> None:
        try:
            answers[case] = await make()
        except httpx.TransportError as exc:  # the server dropped the connection: no answer
            answers[case] = f"no answer ({type(exc).__name__})"

    await attempt(
        "token username",
        lambda: api.http.post("/api/auth/token", data={"username": NUL, "password": "demo"}),
    )
    await attempt(
        "calls queue filter",
        lambda: api.http.get("/api/calls", params={"queue": NUL}, headers=sup),
    )
    for case, method, path, who, body in cases:
        await attempt(case, partial(send, api, method, path, who, body))
    failed = {
        case: r if isinstance(r, str) else f"{r.status_code} {r.text[:200]}"
        for case, r in answers.items()
        if isinstance(r, str) or r.is_server_error
    }
    assert not failed, json.dumps(failed, indent=1)
    for r in answers.values():
        assert not isinstance(r, str)
        if r.is_error:
            assert r.json()["detail"], r.text


async def test_secrets_never_appear_in_any_answer_or_event(api: Api, ws: Any) -> None:
    sup = await ws("super")
    alice = await available(api, ws, "alice")
    pin = "908172"
    password = "Tr0ub4dor-horse"
    forbidden = ["_hash", "argon2", "$2b$", pin, password, api.live.ivr_key, SECRET]
    answers: list[str] = []

    async def keep(r: httpx.Response, status: int) -> httpx.Response:
        assert r.status_code == status, r.text
        answers.append(r.text)
        return r

    customer = with_(CUSTOMER, pin=pin, phone_numbers=["+15559990003"], account_number="76543210")
    created = (await keep(await send(api, "POST", "/api/customers", "super", customer), 201)).json()
    user = with_(USER, username="erin", password=password, skills=["billing", "cards"])
    await keep(await send(api, "POST", "/api/users", "super", user), 201)
    token = await api.http.post("/api/auth/token", data={"username": "erin", "password": password})
    await keep(token, 200)
    wrong = await api.http.post("/api/auth/token", data={"username": "erin", "password": "nope"})
    await keep(wrong, 401)
    # A call of that customer, verified with the PIN, offered to alice.
    call_id = await api.new_call(
        caller="+15559990003",
        verify=("76543210", pin),
        steps=[("pin", "Enter your PIN", "****")],
    )
    await alice.next("call.offered", call_id=call_id)
    await sup.next("call.offered", call_id=call_id)
    for who, path in [
        ("super", "/api/users"),
        ("alice", "/api/agents"),
        ("alice", "/api/me"),
        ("alice", call_path(call_id)),
        ("super", call_path(call_id)),
        ("super", "/api/calls"),
        ("alice", f"/api/customers/{created['id']}"),
        ("super", f"/api/customers/{created['id']}"),
        ("super", "/api/queues"),
        ("super", "/api/escalations"),
    ]:
        await keep(await send(api, "GET", path, who), 200)
    # Refusals that name the field they refuse must not echo its value.
    for bad_pin in (pin[:5] + "x", pin[:3] + " " + pin[3:]):
        body = {"account_number": "76543210", "pin": bad_pin}
        await keep(await send(api, "POST", call_path(call_id, "verify"), None, body), 422)
        assert bad_pin not in answers[-1]
        bad_customer = with_(customer, account_number="76543211", pin=bad_pin)
        await keep(await send(api, "POST", "/api/customers", "super", bad_customer), 422)
        assert bad_pin not in answers[-1]
    too_long = with_(customer, account_number="76543211", pin=pin + "3")  # 7 digits
    await keep(await send(api, "POST", "/api/customers", "super", too_long), 422)
    # A wrong PIN in a well-formed verify answers only the three fields.
    other = await api.new_call(handoff=False, verify=None, steps=[])
    body = {"account_number": "76543210", "pin": pin[:5] + "3"}
    r = await keep(await send(api, "POST", call_path(other, "verify"), None, body), 200)
    assert set(r.json()) == {"verified", "attempts_left", "locked"}
    # Everything heard on /ws meanwhile.
    answers.extend(json.dumps(e) for e in sup.seen)
    answers.extend(json.dumps(e) for e in alice.seen)
    for text in answers:
        low = FRACTION.sub("", TIMESTAMP.sub("", text)).lower()
        for secret in forbidden:
            assert secret.lower() not in low, (secret, text[:300])
