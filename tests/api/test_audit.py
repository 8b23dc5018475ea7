"""The audit trail: every assignment, transfer, escalation, forced status change, verification
lock and unlock, user created and failed sign-in, with who, when and what; for supervisors
only; bounded by age."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from support import Api, LiveServer, Ws

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.context import AppContext
from app.db import utcnow
from ivr.flow import load_flow

WRONG_PASSWORD = "Wrong-Walnut-password-71"


async def trail(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = await api.http.get("/api/audit", params=params, headers=await api.login("super"))
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()
    return entries


async def only(api: Api, action: str, **params: Any) -> dict[str, Any]:
    found = await trail(api, action=action, **params)
    assert len(found) == 1, found
    return found[0]


def recent(entry: dict[str, Any], since: datetime) -> bool:
    return since <= datetime.fromisoformat(entry["at"]) <= utcnow()


async def test_each_change_is_in_the_trail_with_who_when_and_what(api: Api, ws: Any) -> None:
    started = utcnow()
    boss = await api.login("super")
    for name in ("alice", "bob"):
        await api.login(name)
    sup, alice, bob = api.ids["super"], api.ids["alice"], api.ids["bob"]
    alice_ws = await ws("alice")

    # A supervisor creates a login.
    r = await api.http.post(
        "/api/users",
        json={
            "username": "dora",
            "password": "Dora-pass-123",
            "role": "agent",
            "skills": ["loans"],
        },
        headers=boss,
    )
    dora = r.json()["id"]
    created = await only(api, "user.created", user_id=dora)
    assert (created["actor"], created["actor_id"]) == ("user", sup)
    assert (created["object_type"], created["object_id"]) == ("user", dora)
    assert created["details"] == {"username": "dora", "role": "agent", "skills": ["loans"]}
    assert created["request_id"] == r.headers["x-request-id"] and recent(created, started)

    # Failed sign-ins: the name tried and the address, never the password.
    for username in ("alice", "nobody"):
        r = await api.http.post(
            "/api/auth/token", data={"username": username, "password": WRONG_PASSWORD}
        )
        assert r.status_code == 401
    failures = await trail(api, action="auth.sign_in_failed")
    assert [(f["details"]["username"], f["user_id"]) for f in failures] == [
        ("nobody", None),
        ("alice", alice),
    ]
    for failure in failures:
        assert failure["actor"] == "anonymous" and failure["actor_id"] is None
        assert failure["details"]["client"] == "127.0.0.1" and recent(failure, started)
    assert WRONG_PASSWORD not in json.dumps(failures)

    # Three wrong PINs lock the account (the phone tree); a supervisor unlocks it.
    locked_call = await api.new_call(verify=None, handoff=False)
    for _ in range(3):
        body = {"account_number": "12345678", "pin": "0000"}
        await api.post(f"/api/calls/{locked_call}/verify", None, body)
    lock = await only(api, "customer.locked")
    jane = lock["object_id"]
    assert (lock["actor"], lock["actor_id"], lock["object_type"]) == ("ivr", None, "customer")
    assert lock["call_id"] == locked_call and lock["details"]["failures"] == 3
    assert not {"pin", "pin_hash"} & set(lock["details"])
    assert (await api.post(f"/api/customers/{jane}/unlock", "super")).status_code == 200
    unlock = await only(api, "customer.unlocked")
    assert (unlock["actor"], unlock["actor_id"], unlock["object_id"]) == ("user", sup, jane)
    assert unlock["details"]["was_locked_until"] == lock["details"]["until"]

    # An agent's transfer, then another agent's escalation.
    await api.set_status("alice", "available")
    call_id = await api.new_call(intent="card_lost")
    await alice_ws.next("call.offered", call_id=call_id)
    assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 200
    r = await api.post(f"/api/calls/{call_id}/transfer", "alice", {"queue": "loans", "note": None})
    assert r.status_code == 200, r.text
    moved = await only(api, "call.transferred")
    assert (moved["actor"], moved["actor_id"], moved["call_id"]) == ("user", alice, call_id)
    assert moved["details"] == {"from_queue": "cards", "to_queue": "loans", "to_agent_id": None}
    assert moved["request_id"] == r.headers["x-request-id"]
    bob_ws = await ws("bob")
    await api.set_status("bob", "available")
    await bob_ws.next("call.offered", call_id=call_id)
    assert (await api.post(f"/api/calls/{call_id}/accept", "bob")).status_code == 200
    r = await api.post(f"/api/calls/{call_id}/escalate", "bob", {"reason": "fraud_suspected"})
    assert r.status_code == 200, r.text
    (escalated,) = await trail(api, action="call.escalated", call_id=call_id)
    assert (escalated["actor"], escalated["actor_id"]) == ("user", bob)
    assert escalated["details"]["reason"] == "fraud_suspected"

    # The phone tree escalates a caller it could not serve.
    ivr_call = await api.new_call(intent=None, utterance="my cat ate my card", verify=None)
    (by_ivr,) = await trail(api, action="call.escalated", call_id=ivr_call)
    assert (by_ivr["actor"], by_ivr["details"]["reason"]) == ("ivr", "unscripted")

    # A supervisor assigns the escalated call to Alice, then moves it away from her offer: the
    # move takes her status with it.
    r = await api.post(f"/api/calls/{call_id}/assign", "super", {"agent_id": alice})
    assert r.status_code == 200, r.text
    await alice_ws.next("call.offered", call_id=call_id)
    assigned = await only(api, "call.assigned")
    assert (assigned["actor_id"], assigned["user_id"], assigned["call_id"]) == (sup, alice, call_id)
    assert assigned["details"]["from_queue"] == "escalations"
    assert assigned["details"]["to_agent_id"] == alice
    r = await api.post(
        f"/api/calls/{call_id}/transfer", "super", {"queue": "billing", "note": None}
    )
    assert r.status_code == 200, r.text
    await alice_ws.next("call.offer_revoked", call_id=call_id)
    move = await only(api, "call.moved")
    assert (move["actor_id"], move["user_id"]) == (sup, alice)
    assert move["details"]["from_agent_id"] == alice and move["details"]["to_queue"] == "billing"
    forced = await only(api, "agent.status_forced", user_id=alice)
    assert (forced["actor"], forced["actor_id"], forced["call_id"]) == ("user", sup, call_id)
    assert forced["details"] == {"from": "offered", "to": "available", "reason": "moved"}

    # Newest first; filters by call, by user (who acted or whom it is about), by time; pages.
    about_call = await trail(api, call_id=call_id)
    assert [e["action"] for e in about_call] == [
        "agent.status_forced",
        "call.moved",
        "call.assigned",
        "call.escalated",
        "call.transferred",
    ]
    ids = [e["id"] for e in about_call]
    assert ids == sorted(ids, reverse=True)
    about_alice = {e["action"] for e in await trail(api, user_id=alice)}
    assert about_alice == {
        "user.created",  # the demo data's, by the system
        "auth.sign_in_failed",
        "call.transferred",
        "call.assigned",
        "call.moved",
        "agent.status_forced",
    }
    page = await trail(api, call_id=call_id, limit=2)
    assert [e["id"] for e in page] == ids[:2]
    assert [e["id"] for e in await trail(api, call_id=call_id, before_id=ids[1])] == ids[2:]
    everything = await trail(api, limit=500)
    since = await trail(api, **{"from": started.isoformat()}, limit=500)
    assert since and {e["id"] for e in since} < {e["id"] for e in everything}
    before = await trail(api, to=started.isoformat(), limit=500)
    assert {e["action"] for e in before} == {"user.created"}  # the demo's logins only
    assert await trail(api, **{"from": (utcnow() + timedelta(hours=1)).isoformat()}) == []


async def test_an_offer_that_times_out_is_recorded_as_the_systems(server_factory: Any) -> None:
    live: LiveServer = server_factory(offer_timeout_s=0.5)
    api = Api(live)
    try:
        await api.login("alice")
        alice = await Ws(live.ws_url, api.tokens["alice"]).connect()
        await api.set_status("alice", "available")
        call_id = await api.new_call()
        await alice.next("call.offer_revoked", call_id=call_id)
        await alice.next("agent.status", where=lambda d: d["status"] == "away")
        forced = await only(api, "agent.status_forced")
        assert (forced["actor"], forced["actor_id"], forced["request_id"]) == ("system", None, None)
        assert (forced["user_id"], forced["call_id"]) == (api.ids["alice"], call_id)
        assert forced["details"] == {"from": "offered", "to": "away", "reason": "timeout"}
        await alice.close()
    finally:
        await api.http.aclose()


async def test_only_supervisors_read_it(api: Api) -> None:
    r = await api.http.get("/api/audit", headers=await api.login("alice"))
    assert r.status_code == 403 and r.json() == {"detail": "supervisors only"}
    assert (await api.http.get("/api/audit", headers=api.ivr)).status_code == 403
    assert (await api.http.get("/api/audit")).status_code == 401


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"from": "2026-01-01T00:00:00"}, "from"),  # no time zone: which day is it?
        ({"from": "0001-01-01T00:00:00+05:00"}, "from"),  # before year 1 in UTC
        ({"to": "yesterday"}, "to"),
        ({"action": "DROP TABLE"}, "action"),
        ({"action": "x" * 70}, "action"),
        ({"user_id": "0"}, "user_id"),
        ({"call_id": "2147483648"}, "call_id"),
        ({"before_id": "-1"}, "before_id"),
        ({"page": "2"}, "page"),
    ],
)
async def test_bad_filters_are_422_naming_the_parameter(
    api: Api, params: dict[str, str], where: str
) -> None:
    r = await api.http.get("/api/audit", params=params, headers=await api.login("super"))
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["query", where]]


async def test_from_after_to_is_422(api: Api) -> None:
    params = {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    r = await api.http.get("/api/audit", params=params, headers=await api.login("super"))
    assert r.status_code == 422 and "from must not be after to" in r.text


async def test_entries_older_than_the_retention_are_pruned(api: Api) -> None:
    for _ in range(3):
        r = await api.http.post("/api/auth/token", data={"username": "bob", "password": "nope"})
        assert r.status_code == 401
    ctx = AppContext.build(api.live.settings, load_flow(None))
    try:
        retention = timedelta(days=ctx.settings.audit_retention_days)
        async with ctx.reading() as session:
            failed = (
                await session.scalars(
                    select(AuditEntry.id)
                    .where(AuditEntry.action == "auth.sign_in_failed")
                    .order_by(AuditEntry.id)
                )
            ).all()
        old, young = failed[:2], failed[2]
        async with ctx.transaction() as session:
            await session.execute(
                update(AuditEntry)
                .where(AuditEntry.id.in_(old))
                .values(at=utcnow() - retention - timedelta(minutes=1))
            )
            await session.execute(
                update(AuditEntry)
                .where(AuditEntry.id == young)
                .values(at=utcnow() - retention + timedelta(minutes=1))
            )
        assert await audit.prune(ctx, now=utcnow()) == 2
        left = await trail(api, action="auth.sign_in_failed")
        assert [e["id"] for e in left] == [young]
        assert await audit.prune(ctx, now=utcnow()) == 0
    finally:
        await ctx.dispose()
