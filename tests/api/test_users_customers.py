"""Users, the agent's own status, the agents list and customers, as the contract puts them."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
from support import Api

USER_FIELDS = {
    "id",
    "username",
    "display_name",
    "role",
    "skills",
    "status",
    "wrapup_until",
    "disabled",
    "phone",
}
AGENT_FIELDS = {"id", "display_name", "status", "skills"}
DEMO_USERS = {"super", "alice", "bob", "carol"}

DAVE: dict[str, Any] = {
    "username": "dave",
    "password": "dave-secret-pw",
    "display_name": "Dave Day",
    "role": "agent",
    "skills": ["loans", "billing"],
}
ZED: dict[str, Any] = {
    "name": "Zed Zero",
    "account_number": "77777777",
    "pin": "908172",
    "phone_numbers": ["+15559990001", "+447700900999"],
    "segment": "at_risk",
    "language": "es",
}


async def get(api: Api, path: str, who: str) -> httpx.Response:
    return await api.http.get(path, headers=await api.login(who))


async def put_status(api: Api, who: str, body: Any) -> httpx.Response:
    return await api.http.put("/api/me/status", json=body, headers=await api.login(who))


async def me(api: Api, who: str) -> dict[str, Any]:
    r = await get(api, "/api/me", who)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def assert_error(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.json()["detail"], r.text


# --- users -------------------------------------------------------------------------------------


async def test_created_users_sign_in_and_are_listed(api: Api) -> None:
    r = await api.post("/api/users", "super", DAVE)
    assert r.status_code == 201, r.text
    dave = r.json()
    assert set(dave) == USER_FIELDS
    assert dave["username"] == "dave" and dave["display_name"] == "Dave Day"
    assert dave["role"] == "agent" and sorted(dave["skills"]) == ["billing", "loans"]
    assert dave["status"] == "offline" and isinstance(dave["id"], int)
    assert "dave-secret-pw" not in r.text and "hash" not in r.text
    token = await api.http.post(
        "/api/auth/token", data={"username": "dave", "password": "dave-secret-pw"}
    )
    assert token.status_code == 200, token.text
    assert token.json()["user"]["id"] == dave["id"]
    await api.login("dave", "dave-secret-pw")
    assert await me(api, "dave") == dave
    # A created supervisor may manage users in turn.
    sue = {"username": "sue", "password": "sue-secret", "display_name": "Sue", "role": "supervisor"}
    r = await api.post("/api/users", "super", sue)
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "supervisor" and r.json()["skills"] == []
    await api.login("sue", "sue-secret")
    r = await get(api, "/api/users", "sue")
    assert r.status_code == 200
    users = r.json()
    assert isinstance(users, list)
    for user in users:
        assert set(user) == USER_FIELDS, user
    by_name = {u["username"]: u for u in users}
    assert set(by_name) == DEMO_USERS | {"dave", "sue"}
    assert len({u["id"] for u in users}) == len(users)
    assert by_name["dave"] == dave
    assert by_name["alice"] == {
        "id": by_name["alice"]["id"],
        "username": "alice",
        "display_name": "Alice Adams",
        "role": "agent",
        "skills": ["billing", "cards"],
        "status": "offline",
        "wrapup_until": None,
        "disabled": False,
        "phone": None,
    }
    assert "hash" not in r.text and "argon2" not in r.text and "password" not in r.text


async def test_refused_user_bodies_change_nothing(api: Api) -> None:
    assert (await api.post("/api/users", "super", DAVE)).status_code == 201
    before = (await get(api, "/api/users", "super")).json()
    # Duplicate usernames are 409, whatever else differs.
    again = {**DAVE, "password": "another-pw", "display_name": "Dave Two", "role": "supervisor"}
    assert_error(await api.post("/api/users", "super", again), 409)
    assert_error(await api.post("/api/users", "super", {**DAVE, "username": "alice"}), 409)
    # Malformed bodies are 422.
    for body in [
        {k: v for k, v in DAVE.items() if k != "username"},
        {k: v for k, v in DAVE.items() if k != "password"},
        {k: v for k, v in DAVE.items() if k != "role"},
        {**DAVE, "username": "erin", "role": "root"},
        {**DAVE, "username": "erin", "role": "ivr"},
        {**DAVE, "username": "no spaces allowed"},
        {**DAVE, "username": "erin", "skills": "loans"},
        {**DAVE, "username": "erin", "skills": ["Loans And More"]},
        {**DAVE, "username": "erin", "skills": ["loans", "mortgages"]},  # no such queue
        {**DAVE, "username": "erin", "status": "available"},  # not a field of the body
        {**DAVE, "username": "erin", "id": 99},
    ]:
        assert_error(await api.post("/api/users", "super", body), 422)
    assert (await get(api, "/api/users", "super")).json() == before
    r = await api.post("/api/users", "super", {**DAVE, "username": "erin", "skills": ["mortgages"]})
    assert r.status_code == 422
    [problem] = r.json()["detail"]  # the shape of every 422
    assert problem["loc"] == ["body", "skills"]
    assert "billing, cards, escalations, loans" in problem["msg"]
    # The first password still works, the second never took.
    ok = await api.http.post(
        "/api/auth/token", data={"username": "dave", "password": "dave-secret-pw"}
    )
    assert ok.status_code == 200
    bad = await api.http.post(
        "/api/auth/token", data={"username": "dave", "password": "another-pw"}
    )
    assert bad.status_code == 401


async def test_concurrent_creates_of_one_account_or_username_make_one(api: Api) -> None:
    customers = await asyncio.gather(
        *(api.post("/api/customers", "super", {**ZED, "name": f"Zed {i}"}) for i in range(5))
    )
    assert sorted(r.status_code for r in customers) == [201, 409, 409, 409, 409]
    users = await asyncio.gather(
        *(api.post("/api/users", "super", {**DAVE, "display_name": f"D{i}"}) for i in range(5))
    )
    assert sorted(r.status_code for r in users) == [201, 409, 409, 409, 409]
    for r in (*customers, *users):
        assert r.headers["content-type"].startswith("application/json")
        assert r.status_code == 201 or r.json()["detail"]
    listed = (await get(api, "/api/users", "super")).json()
    assert [u["username"] for u in listed].count("dave") == 1


# --- me, status and the agents list ------------------------------------------------------------


async def test_me_status_and_the_agents_list(api: Api) -> None:
    alice = await me(api, "alice")
    assert set(alice) == USER_FIELDS
    assert alice["username"] == "alice" and alice["role"] == "agent"
    assert alice["skills"] == ["billing", "cards"] and alice["status"] == "offline"
    assert alice["id"] == api.ids["alice"]
    boss = await me(api, "super")
    assert boss["username"] == "super" and boss["role"] == "supervisor"
    assert boss["display_name"] == "Sam Super"
    # Each allowed value is taken, seen in /api/me and in the agents list.
    for status in ("available", "away", "offline", "away"):
        r = await put_status(api, "bob", {"status": status})
        assert r.status_code == 200, r.text
        assert set(r.json()) == USER_FIELDS
        assert r.json()["status"] == status and r.json()["username"] == "bob"
        assert (await me(api, "bob"))["status"] == status
        agents = (await get(api, "/api/agents", "alice")).json()
        assert {a["id"]: a["status"] for a in agents}[api.ids["bob"]] == status
    # One agent's switch is theirs alone.
    assert (await me(api, "alice"))["status"] == "offline"
    # Any other value is refused and the old one kept.
    values: list[Any] = ["busy", "offered", "wrapup", "", "Available", "online", None, 1, True, []]
    for value in values:
        assert_error(await put_status(api, "bob", {"status": value}), 422)
    for body in ({}, {"status": "available", "extra": 1}, ["available"], "available"):
        assert_error(await put_status(api, "bob", body), 422)
    assert (await me(api, "bob"))["status"] == "away"
    # The agents list, for choosing a transfer target: agents only, as they stand now.
    await api.set_status("carol", "available")  # bob is away from above
    for who in ("alice", "super"):
        r = await get(api, "/api/agents", who)
        assert r.status_code == 200
        agents = r.json()
        assert isinstance(agents, list)
        for agent in agents:
            assert set(agent) == AGENT_FIELDS, agent
        by_name = {a["display_name"]: a for a in agents}
        assert set(by_name) == {"Alice Adams", "Bob Brown", "Carol Clark"}  # no supervisor
        assert by_name["Carol Clark"]["status"] == "available"
        assert by_name["Bob Brown"]["status"] == "away"
        assert by_name["Bob Brown"]["skills"] == ["cards", "loans"]
        assert by_name["Alice Adams"]["id"] == api.ids["alice"]


# --- customers ---------------------------------------------------------------------------------


async def test_create_customer_is_201_without_the_pin(api: Api) -> None:
    r = await api.post("/api/customers", "super", ZED)
    assert r.status_code == 201, r.text
    customer = r.json()
    assert {"id", "name", "account_number", "segment", "phone_numbers"} <= set(customer)
    assert customer["name"] == "Zed Zero" and customer["account_number"] == "77777777"
    assert customer["segment"] == "at_risk"
    assert customer["phone_numbers"] == ["+15559990001", "+447700900999"]
    assert not [k for k in customer if "pin" in k]
    assert "908172" not in r.text and "argon2" not in r.text
    detail = await get(api, f"/api/customers/{customer['id']}", "super")
    assert detail.status_code == 200
    assert detail.json()["recent_calls"] == []
    assert "908172" not in detail.text and "pin" not in detail.json()
    # The customer is known by the phone and verifies with the PIN given.
    r = await api.post("/api/calls", None, {"caller_number": "+447700900999"})
    assert r.status_code == 201 and r.json()["caller_known"] is True
    v = await api.post(
        f"/api/calls/{r.json()['id']}/verify", None, {"account_number": "77777777", "pin": "908172"}
    )
    assert v.json()["verified"] is True
    assert (await api.call(r.json()["id"]))["customer"]["id"] == customer["id"]
    # PINs of 4 to 6 digits are all taken.
    for i, pin in enumerate(("1234", "12345", "123456")):
        body = {**ZED, "account_number": f"6666666{i}", "pin": pin, "phone_numbers": []}
        assert (await api.post("/api/customers", "super", body)).status_code == 201


async def test_refused_customer_bodies_change_nothing(api: Api) -> None:
    first = await api.post("/api/customers", "super", ZED)
    assert first.status_code == 201
    # A duplicate account number is 409, the demo's too.
    again = {**ZED, "name": "Someone Else", "pin": "1111", "phone_numbers": ["+15559990005"]}
    assert_error(await api.post("/api/customers", "super", again), 409)
    demo = {**ZED, "account_number": "12345678", "phone_numbers": ["+15559990005"]}
    assert_error(await api.post("/api/customers", "super", demo), 409)
    # A malformed field is 422.
    fresh = {**ZED, "account_number": "88888888", "phone_numbers": ["+15559990005"]}
    changes: list[dict[str, Any]] = [
        {"account_number": "7777777"},  # 7 digits
        {"account_number": "777777777"},
        {"account_number": "abcdefgh"},
        {"pin": "123"},  # 3 digits
        {"pin": "1234567"},
        {"pin": "12 34"},
        {"phone_numbers": ["15559990001"]},  # no +
        {"phone_numbers": ["+1555999000a"]},
        {"segment": "gold"},  # unknown segment
        {"name": ""},
        {"language": "klingon"},
        {"extra": "field"},
    ]
    for change in changes:
        assert_error(await api.post("/api/customers", "super", {**fresh, **change}), 422)
    # Nothing of the refused ones was written: their phone number matches nobody.
    r = await api.post("/api/calls", None, {"caller_number": "+15559990005"})
    assert r.json()["caller_known"] is False
    detail = (await get(api, f"/api/customers/{first.json()['id']}", "super")).json()
    assert detail["name"] == "Zed Zero"
    assert (await api.post("/api/customers", "super", fresh)).status_code == 201


def started(call: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(call["started_at"].replace("Z", "+00:00"))


async def test_recent_calls_newest_first(api: Api) -> None:
    first = await api.new_call(intent="billing")
    second = await api.new_call(intent="loans")
    third = await api.new_call(intent="card_lost")
    jane = (await api.call(first))["customer"]["id"]
    r = await get(api, f"/api/customers/{jane}", "super")
    assert r.status_code == 200
    detail = r.json()
    assert detail["name"] == "Jane Doe" and detail["account_number"] == "12345678"
    assert "+15551230001" in detail["phone_numbers"]
    recent = detail["recent_calls"]
    assert [c["id"] for c in recent[:3]] == [third, second, first]
    assert len(recent) == 6  # the three new ones and the demo's three earlier calls
    times = [started(c) for c in recent]
    assert times == sorted(times, reverse=True)
    assert [c["intent"] for c in recent[:3]] == ["card_lost", "loans", "billing"]
    assert recent[3]["intent"] == "loans" and recent[3]["disposition"] == "unresolved"
    assert "pin" not in r.text.lower()


async def test_an_agent_sees_a_customer_once_offered_one_of_its_calls(api: Api, ws: Any) -> None:
    call_id = await api.new_call(caller="+15551230002", verify=("23456789", "4321"))
    victor = (await api.call(call_id))["customer"]["id"]
    # Not yet offered to anyone: no agent may read Victor.
    for name in ("alice", "bob", "carol"):
        assert_error(await get(api, f"/api/customers/{victor}", name), 404)
    alice = await ws("alice")
    await api.set_status("alice", "available")
    offered = await alice.next("call.offered", call_id=call_id)
    assert offered["data"]["customer"]["id"] == victor
    r = await get(api, f"/api/customers/{victor}", "alice")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Victor Ortiz"
    assert [c["id"] for c in r.json()["recent_calls"]] == [call_id]
    assert_error(await get(api, f"/api/customers/{victor}", "bob"), 404)
    # Offered before, still visible after the offer ends.
    assert (await api.post(f"/api/calls/{call_id}/reject", "alice")).status_code == 200
    assert (await get(api, f"/api/customers/{victor}", "alice")).status_code == 200
    # Assigned by a supervisor is as good as offered.
    await api.set_status("bob", "away")
    r = await api.post(f"/api/calls/{call_id}/assign", "super", {"agent_id": api.ids["bob"]})
    assert r.status_code == 200, r.text
    assert (await get(api, f"/api/customers/{victor}", "bob")).status_code == 200
    # Another customer, none of whose calls reached alice, stays hidden from her.
    jane_call = await api.new_call(intent="loans")
    jane = (await api.call(jane_call))["customer"]["id"]
    assert_error(await get(api, f"/api/customers/{jane}", "alice"), 404)


async def test_a_new_agent_reaches_the_supervisors_wall_at_once(api: Api, ws: Any) -> None:
    wall = await ws("super")
    alice = await ws("alice")
    r = await api.post("/api/users", "super", DAVE)
    assert r.status_code == 201, r.text
    created = await wall.next("agent.created")
    assert created["data"] == {
        "id": r.json()["id"],
        "display_name": "Dave Day",
        "status": "offline",
        "skills": ["billing", "loans"],
    }
    # Agents are not told of each other; a new supervisor is no agent for the wall.
    sue = {"username": "sue", "password": "sue-secret", "display_name": "Sue", "role": "supervisor"}
    assert (await api.post("/api/users", "super", sue)).status_code == 201
    await api.set_status("alice", "available")
    await alice.next("agent.status")
    assert not any(e["type"] == "agent.created" for e in alice.seen)
    assert [e["type"] for e in wall.seen].count("agent.created") == 1
