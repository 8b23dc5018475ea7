"""Every call route's 404, 409 and 422: bad input is refused clearly and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from support import Api

AGENT_ACTIONS = [
    ("accept", None),
    ("reject", None),
    ("notes", {"text": "hello"}),
    ("transfer", {"queue": "billing", "note": "x"}),
    ("escalate", {"reason": "fraud"}),
    ("wrap", {"disposition": "resolved", "sentiment": "neutral"}),
]
IVR_ACTIONS = [
    ("verify", {"account_number": "12345678", "pin": "1234"}),
    ("steps", {"node": "menu", "prompt": "p", "input": "1"}),
    ("handoff", {"intent": "billing", "collected": {}, "utterance": None, "escalate_reason": None}),
    ("hangup", None),
    ("survey", {"csat": 5, "had_to_repeat": False}),
]


async def test_unknown_call_is_404_everywhere(api: Api) -> None:
    for action, body in AGENT_ACTIONS:
        r = await api.post(f"/api/calls/999999/{action}", "alice", body)
        assert r.status_code == 404, action
        assert r.json()["detail"]
    for action, body in IVR_ACTIONS:
        assert (await api.post(f"/api/calls/999999/{action}", None, body)).status_code == 404
    assert (await api.http.get("/api/calls/999999/position", headers=api.ivr)).status_code == 404
    r = await api.post("/api/calls/999999/assign", "super", {"agent_id": 2})
    assert r.status_code == 404
    for path in ("/api/calls/999999", "/api/customers/999999"):
        assert (await api.http.get(path, headers=await api.login("super"))).status_code == 404


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "99999999999999999999", "1.5"])
async def test_malformed_ids_are_422_never_500(api: Api, bad_id: str) -> None:
    sup = await api.login("super")
    for path in (f"/api/calls/{bad_id}", f"/api/customers/{bad_id}"):
        assert (await api.http.get(path, headers=sup)).status_code == 422
    r = await api.post(f"/api/calls/{bad_id}/accept", "alice")
    assert r.status_code == 422
    r = await api.post("/api/calls/1/assign", "super", {"agent_id": bad_id})
    assert r.status_code == 422


async def test_agent_actions_on_a_call_never_theirs_are_404(api: Api) -> None:
    call_id = await api.new_call()
    for action, body in AGENT_ACTIONS:
        r = await api.post(f"/api/calls/{call_id}/{action}", "bob", body)
        assert r.status_code == 404, action
        assert "Jane" not in r.text


async def _state(api: Api, call_id: int) -> str:
    state: str = (await api.call(call_id))["state"]
    return state


async def test_wrong_state_is_409_and_changes_nothing(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    # Offered: only accept and reject are allowed.
    for action, body in AGENT_ACTIONS[3:]:
        r = await api.post(f"/api/calls/{call_id}/{action}", "alice", body)
        assert r.status_code == 409, action
        assert await _state(api, call_id) == "offered"
    assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 200
    for action in ("accept", "reject"):
        assert (await api.post(f"/api/calls/{call_id}/{action}", "alice")).status_code == 409
    # Connected: the IVR may not hand off, verify or survey; a supervisor may not assign.
    for action, body in IVR_ACTIONS[::2]:
        assert (await api.post(f"/api/calls/{call_id}/{action}", None, body)).status_code == 409
    r = await api.post(f"/api/calls/{call_id}/assign", "super", {"agent_id": api.ids["alice"]})
    assert r.status_code == 409
    assert await _state(api, call_id) == "connected"
    wrap = {"disposition": "resolved", "sentiment": "neutral"}
    assert (await api.post(f"/api/calls/{call_id}/wrap", "alice", wrap)).status_code == 200
    for action, body in AGENT_ACTIONS:
        r = await api.post(f"/api/calls/{call_id}/{action}", "alice", body)
        assert r.status_code == 409, action
    assert (await api.post(f"/api/calls/{call_id}/hangup", None)).status_code == 409
    assert await _state(api, call_id) == "ended"


async def test_assign_to_an_offline_or_busy_agent_is_409(api: Api, ws: Any) -> None:
    call_id = await api.new_call(intent=None, utterance="something odd")
    await api.login("bob")
    r = await api.post(f"/api/calls/{call_id}/assign", "super", {"agent_id": api.ids["bob"]})
    assert r.status_code == 409  # bob is offline
    alice = await ws("alice")
    await api.set_status("alice", "available")
    other = await api.new_call()
    await alice.next("call.offered", call_id=other)
    r = await api.post(f"/api/calls/{call_id}/assign", "super", {"agent_id": api.ids["alice"]})
    assert r.status_code == 409  # alice holds an offer
    assert await _state(api, call_id) == "queued"
    r = await api.post(f"/api/calls/{call_id}/assign", "super", {"agent_id": api.ids["super"]})
    assert r.status_code == 404  # not an agent


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("transfer", {"queue": "billing", "agent_id": 2}),
        ("transfer", {"note": "neither"}),
        ("transfer", {"queue": "nowhere"}),
        ("transfer", {"queue": "billing", "extra": 1}),
        ("escalate", {}),
        ("escalate", {"reason": "Not A Word!"}),
        ("wrap", {"disposition": "done", "sentiment": "neutral"}),
        ("wrap", {"disposition": "resolved", "sentiment": "angry"}),
        ("notes", {"text": ""}),
        ("notes", {"text": "x", "author": 1}),
    ],
)
async def test_bad_agent_bodies_are_422(api: Api, ws: Any, action: str, body: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    await api.post(f"/api/calls/{call_id}/accept", "alice")
    r = await api.post(f"/api/calls/{call_id}/{action}", "alice", body)
    assert r.status_code == 422, r.text
    assert (await api.call(call_id))["state"] == "connected"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/calls", {"caller_number": "5551230001"}),
        ("/api/calls", {"caller_number": "+15551230001", "language": "fr"}),
        ("/api/calls", {"caller_number": "+15551230001", "spy": True}),
        ("/api/calls/{id}/verify", {"account_number": "abcdefgh", "pin": "1234"}),
        ("/api/calls/{id}/verify", {"account_number": "12345678"}),
        ("/api/calls/{id}/steps", {"node": "menu", "prompt": "p", "input": "1", "x": 1}),
        ("/api/calls/{id}/handoff", {"intent": "billing", "collected": {"a": 1}}),
        ("/api/calls/{id}/handoff", {"intent": "billing", "collected": [], "x": None}),
        ("/api/calls/{id}/survey", {"csat": 6, "had_to_repeat": False}),
        ("/api/calls/{id}/survey", {"csat": 0, "had_to_repeat": False}),
    ],
)
async def test_bad_ivr_bodies_are_422(api: Api, path: str, body: Any) -> None:
    call_id = await api.new_call(handoff=False, verify=None, steps=[])
    r = await api.post(path.format(id=call_id), None, body)
    assert r.status_code == 422, r.text
    assert "1234" not in r.text and "abcdefgh" not in r.text
    assert (await api.call(call_id))["state"] == "ivr"
