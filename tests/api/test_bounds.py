"""What one call may hold: every list of it capped, its context kept small, and every event
that carries that context under a documented bound, whatever the IVR, agents or supervisors
send (the defaults: 200 steps, 100 notes of 2000 characters, 50 transfers, 64 KiB)."""

from __future__ import annotations

import json
from typing import Any

from support import Api, Ws

from app.calls.bounds import SLACK_BYTES

BUDGET = 64 * 1024
# Every event about a call, its whole context included, stays under this (docs/API.md).
EVENT_DATA_BOUND = BUDGET + SLACK_BYTES


def _size(data: Any) -> int:
    """The bytes of JSON the server wrote for this data (compact, UTF-8)."""
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


async def _counts(api: Api, call_id: int) -> tuple[int, int, int]:
    context = await api.call(call_id)
    return len(context["ivr_path"]), len(context["notes"]), len(context["transfers"])


async def _every_call_event_within_the_bound(api: Api) -> int:
    """The whole outbox as a supervisor replays it: no call event over the bound; the largest."""
    replay = await Ws(api.live.ws_url, api.tokens["super"]).connect(last_seq=0)
    try:
        sizes = [_size(e["data"]) for e in replay.seen if e["type"].startswith("call.")]
    finally:
        await replay.close()
    assert sizes
    assert max(sizes) <= EVENT_DATA_BOUND
    return max(sizes)


async def test_a_call_filled_to_every_cap_refuses_the_next_of_each(api: Api) -> None:
    await api.login("super")
    call_id = await api.new_call(intent="billing")  # four steps
    step = {"node": "menu", "prompt": "For balance and payments, press 1.", "input": "9"}
    # Steps are counted whatever the call's state (this one is queued).
    for _ in range(196):
        r = await api.post(f"/api/calls/{call_id}/steps", None, step)
        assert r.status_code == 201, r.text
    r = await api.post(f"/api/calls/{call_id}/steps", None, step)
    assert r.status_code == 409
    assert r.json()["detail"] == "the call has 200 phone-tree steps, the most a call keeps"

    for n in range(100):
        r = await api.post(f"/api/calls/{call_id}/notes", "super", {"text": f"note {n}"})
        assert r.status_code == 201, r.text
    r = await api.post(f"/api/calls/{call_id}/notes", "super", {"text": "one more"})
    assert r.status_code == 409
    assert r.json()["detail"] == "the call has 100 notes, the most a call keeps"

    # A supervisor moves the waiting call between two queues (nobody is signed in to take it).
    for n in range(50):
        queue = "cards" if n % 2 == 0 else "billing"
        r = await api.post(f"/api/calls/{call_id}/transfer", "super", {"queue": queue})
        assert r.status_code == 200, r.text
    r = await api.post(f"/api/calls/{call_id}/transfer", "super", {"queue": "cards"})
    assert r.status_code == 409
    assert r.json()["detail"] == "the call was transferred 50 times, the most a call keeps"
    # A move with a note grows two lists; it is refused whole.
    r = await api.post(f"/api/calls/{call_id}/transfer", "super", {"queue": "loans", "note": "x"})
    assert r.status_code == 409

    assert await _counts(api, call_id) == (200, 100, 50)
    context = await api.call(call_id)
    assert context["queue"] == "billing"  # the refused moves changed nothing
    await _every_call_event_within_the_bound(api)


async def test_long_notes_stop_at_the_context_budget_and_events_stay_under_the_bound(
    api: Api,
) -> None:
    await api.login("super")
    call_id = await api.new_call()
    # Every character of these takes two bytes: the budget counts bytes, not characters.
    text = "Señor Ñuñez: é" * 141 + "ab"
    assert len(text) == 1976
    added = 0
    while True:
        r = await api.post(f"/api/calls/{call_id}/notes", "super", {"text": text})
        if r.status_code != 201:
            break
        added += 1
        assert added < 40, "the budget never stopped the notes"
    assert r.status_code == 409, r.text
    assert "a call may carry; a shorter text may fit" in r.json()["detail"]
    assert 10 <= added < 100  # the budget, not the count, stopped these
    assert (await _counts(api, call_id))[1] == added
    # A short note may still fit in what is left.
    r = await api.post(f"/api/calls/{call_id}/notes", "super", {"text": "short"})
    assert r.status_code == 201, r.text
    largest = await _every_call_event_within_the_bound(api)
    assert largest > BUDGET - 4 * 1024  # the call was really filled


async def test_a_note_longer_than_the_setting_is_refused_like_any_malformed_field(
    api: Api,
) -> None:
    call_id = await api.new_call()
    for path, body in (
        ("notes", {"text": "x" * 2001}),
        ("transfer", {"queue": "loans", "note": "x" * 2001}),
        ("wrap", {"disposition": "resolved", "sentiment": "neutral", "notes": "x" * 2001}),
    ):
        r = await api.post(f"/api/calls/{call_id}/{path}", "super", body)
        assert r.status_code == 422, (path, r.text)
        (problem,) = r.json()["detail"]
        field = next(k for k in body if k in ("text", "note", "notes"))
        assert problem["loc"] == ["body", field]
        assert problem["msg"] == "String should have at most 2000 characters"
        assert "xxxx" not in r.text  # never echoed
    r = await api.post(f"/api/calls/{call_id}/notes", "super", {"text": "x" * 2000})
    assert r.status_code == 201, r.text
    assert await _counts(api, call_id) == (4, 1, 0)


async def test_the_phone_tree_fills_half_the_budget_and_any_handoff_the_schema_allows_fits(
    api: Api,
) -> None:
    r = await api.post("/api/calls", None, {"caller_number": "+15557770001"})
    assert r.status_code == 201
    call_id = r.json()["id"]
    step = {"node": "story", "prompt": "p" * 2000, "input": "i" * 500}
    kept = 0
    while (r := await api.post(f"/api/calls/{call_id}/steps", None, step)).status_code == 201:
        kept += 1
        assert kept < 200
    assert r.status_code == 409
    assert "the phone tree may fill; no more steps are kept" in r.json()["detail"]
    assert 8 <= kept <= 13  # about 32 KiB of 2.6 KB steps
    # The largest handoff the schema allows in plain text still goes through.
    collected = {f"{i:02d}" + "k" * 62: "v" * 500 for i in range(50)}
    body = {"intent": "loans", "collected": collected, "utterance": "u" * 2000}
    r = await api.post(f"/api/calls/{call_id}/handoff", None, body)
    assert r.status_code == 200, r.text
    # A handoff whose answers take more bytes than the phone tree's half is refused whole.
    other = (await api.post("/api/calls", None, {"caller_number": "+15557770002"})).json()["id"]
    wide = {f"{i:02d}": "\U0001f4b3" * 500 for i in range(50)}  # 2000 bytes each
    r = await api.post(f"/api/calls/{other}/handoff", None, {"intent": "loans", "collected": wide})
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "collected"]
    assert (await api.call(other))["state"] == "ivr"
    await api.login("super")
    await _every_call_event_within_the_bound(api)
