"""A supervisor's hands on any call: assign a waiting call, move it to another queue, reassign
a connected one; each move is in the call's trail, saying who moved it, when and to whom."""

from __future__ import annotations

from typing import Any

from support import Api


async def trail(api: Api, call_id: int) -> list[dict[str, Any]]:
    transfers: list[dict[str, Any]] = (await api.call(call_id))["transfers"]
    return transfers


async def test_a_waiting_call_is_assigned_or_moved_keeping_its_place(api: Api, ws: Any) -> None:
    bob = await ws("bob")
    await api.login("bob")
    await api.login("super")
    # A billing caller waits: Alice (billing) is away; Bob (cards, loans) is available.
    await api.set_status("alice", "away")
    await api.set_status("bob", "available")
    call_id = await api.new_call(intent="billing", verify=None)
    waiting = await api.call(call_id)
    assert waiting["state"] == "queued" and waiting["queue"] == "billing"

    # Moved to cards: Bob has that skill and gets it, the caller keeping their wait.
    r = await api.post(f"/api/calls/{call_id}/transfer", "super", {"queue": "cards", "note": None})
    assert r.status_code == 200, r.text
    await bob.next("call.offered", call_id=call_id)
    moved = await api.call(call_id)
    assert moved["queue"] == "cards" and moved["queued_at"] == waiting["queued_at"]
    assert moved["wait_s"] >= waiting["wait_s"]
    [entry] = await trail(api, call_id)
    assert entry["by"] == {"id": api.ids["super"], "display_name": "Sam Super"}
    assert entry["from_agent"] is None and entry["to_queue"] == "cards"

    # Then given to Carol instead, who is on a break: the offer moves, the trail grows.
    await api.set_status("carol", "away")
    r = await api.post(f"/api/calls/{call_id}/assign", "super", {"agent_id": api.ids["carol"]})
    assert r.status_code == 200, r.text
    revoked = await bob.next("call.offer_revoked", call_id=call_id)
    assert revoked["data"]["reason"] == "reassigned"
    last = (await trail(api, call_id))[-1]
    assert last["by"]["id"] == api.ids["super"]
    assert last["from_agent"]["id"] == api.ids["bob"]
    assert last["to_agent"]["id"] == api.ids["carol"] and last["to_queue"] is None


async def test_a_connected_call_is_reassigned_and_its_agent_freed(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.login("bob")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 200

    bob = await ws("bob")
    await api.set_status("bob", "available")
    body = {"agent_id": api.ids["bob"]}
    r = await api.post(f"/api/calls/{call_id}/assign", "super", body)
    assert r.status_code == 200, r.text
    offered = await bob.next("call.offered", call_id=call_id)
    assert offered["data"]["agent_id"] == api.ids["bob"]
    # Alice's screen lets the call go, and she is free for the next one.
    gone = await alice.next("call.updated", call_id=call_id)
    assert gone["data"]["agent_id"] == api.ids["bob"] and gone["data"]["state"] == "offered"
    # Freed in the same commit, so already among what her socket got (events come in order).
    statuses = [e["data"]["status"] for e in alice.seen if e["type"] == "agent.status"]
    assert statuses[-1] == "available"
    last = (await trail(api, call_id))[-1]
    assert last["by"]["display_name"] == "Sam Super"
    assert last["from_agent"]["id"] == api.ids["alice"] and last["to_agent"]["id"] == api.ids["bob"]
    # The caller waited on hold while it moved: that counts as waiting.
    assert (await api.call(call_id))["waiting_since"] is not None
    accepted = await api.post(f"/api/calls/{call_id}/accept", "bob")
    assert accepted.status_code == 200, accepted.text


async def test_refused_moves_change_nothing(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 200
    before = await api.call(call_id)
    bad = {"queue": "mortgages", "note": None}
    assert (await api.post(f"/api/calls/{call_id}/transfer", "super", bad)).status_code == 422
    # An agent moves only her own calls: Bob never had this one.
    other = {"queue": "billing", "note": None}
    assert (await api.post(f"/api/calls/{call_id}/transfer", "bob", other)).status_code == 404
    wrap = {"disposition": "resolved", "sentiment": "neutral"}
    assert (await api.post(f"/api/calls/{call_id}/wrap", "alice", wrap)).status_code == 200
    ended = await api.post(f"/api/calls/{call_id}/transfer", "super", other)
    assert ended.status_code == 409
    after = await api.call(call_id)
    assert after["transfers"] == before["transfers"] and after["queue"] == before["queue"]


async def test_a_call_moved_from_an_agent_to_a_queue_is_not_offered_straight_back(
    api: Api, ws: Any
) -> None:
    bob = await ws("bob")
    await api.set_status("alice", "away")  # the other cards agent
    await api.set_status("bob", "available")
    call_id = await api.new_call()  # a lost card: cards
    await bob.next("call.offered", call_id=call_id)
    # Ringing at Bob, the supervisor sends it back to the cards queue: Bob is passed over.
    moved = await api.post(f"/api/calls/{call_id}/transfer", "super", {"queue": "billing"})
    assert moved.status_code == 200, moved.text
    revoked = await bob.next("call.offer_revoked", call_id=call_id)
    assert revoked["data"]["reason"] == "moved"
    r = await api.post(f"/api/calls/{call_id}/transfer", "super", {"queue": "cards"})
    assert r.status_code == 200, r.text
    call = await api.call(call_id)
    assert call["state"] == "queued" and call["agent_id"] is None
