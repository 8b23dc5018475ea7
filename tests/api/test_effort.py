"""Caller effort and "asked again", through the public API, for scripted calls."""

from __future__ import annotations

from typing import Any

from support import Api

from app.calls.effort import score
from app.calls.schemas import Effort

INVALID_TWICE = [
    ("language", "For English press 1", "1"),
    ("verify.account", "Enter your account number", "12345678#"),
    ("verify.pin", "Enter your PIN", "****"),
    ("menu", "Lost card press 2", "9"),
    ("menu", "Lost card press 2", "7"),
]


def _score_matches(effort: dict[str, Any]) -> None:
    assert effort["score"] == score(Effort(**effort))


async def _connect(api: Api, ws: Any, username: str, call_id: int) -> None:
    await ws(username)
    r = await api.post(f"/api/calls/{call_id}/accept", username)
    assert r.status_code == 200, r.text


async def test_a_verified_call_transferred_once_and_asked_again(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call(collected={"card_last4": "4242"})
    offered = (await alice.next("call.offered", call_id=call_id))["data"]
    assert offered["effort"]["offers"] == 1
    assert offered["asked_again"] == []
    assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 200
    # Only the agent on the call may say they asked again, and only for what the tree collected.
    r = await api.post(f"/api/calls/{call_id}/asked-again", "bob", {"field": "identity"})
    assert r.status_code == 404
    r = await api.post(f"/api/calls/{call_id}/asked-again", "alice", {"field": "postcode"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "field"]
    r = await api.post(f"/api/calls/{call_id}/asked-again", "alice", {"field": "identity"})
    assert r.status_code == 201, r.text
    asked = r.json()
    assert asked["field"] == "identity" and asked["agent_id"] == api.ids["alice"]
    updated = await alice.next("call.updated", call_id=call_id, where=lambda d: d["asked_again"])
    assert updated["data"]["asked_again"] == [asked]
    # A second click on the same field by the same agent is the same fact.
    r = await api.post(f"/api/calls/{call_id}/asked-again", "alice", {"field": "identity"})
    assert r.status_code == 200 and r.json() == asked
    await api.set_status("bob", "available")
    await api.login("bob")
    r = await api.post(
        f"/api/calls/{call_id}/transfer", "alice", {"agent_id": api.ids["bob"], "note": "loans"}
    )
    assert r.status_code == 200, r.text
    await _connect(api, ws, "bob", call_id)
    effort = (await api.call(call_id))["effort"]
    assert effort["transfers"] == 1
    assert effort["asked_again"] == 1
    assert effort["escalations"] == 0
    assert effort["offers"] >= 1
    assert effort["ivr_retries"] == 0
    assert effort["wait_seconds"] >= 0 and effort["ivr_seconds"] >= 0
    _score_matches(effort)
    assert effort["score"] >= 2 + 3  # a transfer and an "asked again", at least


async def test_an_escalation_after_two_invalid_keys(api: Api) -> None:
    call_id = await api.new_call(intent=None, escalate_reason="no_match", steps=INVALID_TWICE)
    context = await api.call(call_id)
    assert context["queue"] == "escalations"
    effort = context["effort"]
    assert effort["ivr_retries"] == 2
    assert effort["escalations"] == 1
    assert effort["transfers"] == 0 and effort["offers"] == 0 and effort["asked_again"] == 0
    _score_matches(effort)


async def test_an_abandoned_caller_and_the_customers_sum(api: Api) -> None:
    first = await api.new_call()
    r = await api.post(f"/api/calls/{first}/hangup", None)
    assert r.status_code == 200, r.text
    abandoned = r.json()
    assert abandoned["state"] == "abandoned"
    effort = abandoned["effort"]
    assert effort["offers"] == 0 and effort["transfers"] == 0 and effort["escalations"] == 0
    assert effort["wait_seconds"] >= 0
    _score_matches(effort)
    # The next call shows the abandoned one's score in its history, and the customer's sum.
    second = await api.call(await api.new_call(intent="billing"))
    (entry,) = [h for h in second["history"] if h["id"] == first]
    assert entry["effort"] == effort["score"]
    assert second["customer"]["effort"] == {"calls": 1, "score": effort["score"]}
    customer = await api.http.get(
        f"/api/customers/{second['customer']['id']}", headers=await api.login("super")
    )
    assert customer.json()["effort"] == {"calls": 1, "score": effort["score"]}
    (recent,) = [c for c in customer.json()["recent_calls"] if c["id"] == first]
    assert recent["effort"] == effort["score"]


async def test_identity_asked_again_only_on_a_verified_call(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call(verify=None, intent="billing")
    await alice.next("call.offered", call_id=call_id)
    assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 200
    r = await api.post(f"/api/calls/{call_id}/asked-again", "alice", {"field": "identity"})
    assert r.status_code == 422
    assert (await api.call(call_id))["asked_again"] == []
