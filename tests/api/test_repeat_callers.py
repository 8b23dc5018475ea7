"""Repeat callers, promises and earlier calls, through the public API and /ws."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Date, bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine
from support import Api


async def _answer_and_wrap(api: Api, username: str, call_id: int, body: dict[str, Any]) -> None:
    assert (await api.post(f"/api/calls/{call_id}/accept", username)).status_code == 200
    r = await api.post(f"/api/calls/{call_id}/wrap", username, body)
    assert r.status_code == 200, r.text


def _tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).date().isoformat()


async def test_a_second_call_about_the_same_intent_goes_to_the_earlier_agent(
    api: Api, ws: Any
) -> None:
    alice, bob = await ws("alice"), await ws("bob")
    await api.set_status("alice", "available")
    first = await api.new_call(intent="card_lost")
    offered = (await alice.next("call.offered", call_id=first))["data"]
    # Jane's earlier card_lost call was 12 days ago: no repeat.
    assert offered["repeat_of"] is None
    assert (await api.call(first))["repeat_of"] is None
    # Bob has been idle longer than Alice will be: the usual rule would pick him.
    await api.set_status("bob", "available")
    await _answer_and_wrap(
        api,
        "alice",
        first,
        {
            "disposition": "follow_up",
            "sentiment": "neutral",
            "notes": "Courier arrives Friday.",
            "promise": {"text": "Call back once the courier has been", "due": _tomorrow()},
        },
    )
    second = await api.new_call(intent="card_lost")
    pop = (await alice.next("call.offered", call_id=second))["data"]
    assert pop["repeat_of"] == first
    assert (await api.call(second, "alice"))["repeat_of"] == first
    (earlier,) = [h for h in pop["history"] if h["id"] == first]
    assert earlier["disposition"] == "follow_up"
    assert earlier["last_note"]["text"] == "Courier arrives Friday."
    (promise,) = pop["promises"]
    assert promise["text"] == "Call back once the courier has been"
    assert promise["call_id"] == first and promise["kept_at"] is None
    assert promise["made_by"]["display_name"] == "Alice Adams"
    assert not promise["overdue"]
    # Bob cannot read the earlier call until a call of that customer is his.
    bob_headers = await api.login("bob")
    assert (await api.http.get(f"/api/calls/{first}", headers=bob_headers)).status_code == 404
    r = await api.post(f"/api/promises/{promise['id']}/kept", "bob")
    assert r.status_code == 404
    # Alice passes: the usual rule takes over, and Bob gets it.
    assert (await api.post(f"/api/calls/{second}/reject", "alice")).status_code == 200
    await bob.next("call.offered", call_id=second)
    r = await api.http.get(f"/api/calls/{first}", headers=bob_headers)
    assert r.status_code == 200, r.text
    assert [n["text"] for n in r.json()["notes"]] == ["Courier arrives Friday."]
    # ...but he may read, not act on it.
    r = await api.post(f"/api/calls/{first}/notes", "bob", {"text": "x"})
    assert r.status_code == 404
    r = await api.post(f"/api/promises/{promise['id']}/kept", "bob")
    assert r.status_code == 200, r.text
    kept = r.json()
    assert kept["kept_by"]["display_name"] == "Bob Brown" and kept["kept_at"]
    assert (await api.post(f"/api/promises/{promise['id']}/kept", "bob")).status_code == 409
    assert (await api.call(second))["promises"][0]["kept_at"] == kept["kept_at"]


async def test_another_intent_is_no_repeat(api: Api) -> None:
    first = await api.new_call(intent="card_lost")
    assert (await api.post(f"/api/calls/{first}/hangup", None)).status_code == 200
    other = await api.new_call(intent="billing")
    assert (await api.call(other))["repeat_of"] is None
    again = await api.new_call(intent="card_lost")
    assert (await api.call(again))["repeat_of"] == first


async def test_a_promise_needs_follow_up_and_a_day_to_come(api: Api, ws: Any) -> None:
    await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 200
    promise = {"text": "Send a new card", "due": _tomorrow()}
    r = await api.post(
        f"/api/calls/{call_id}/wrap",
        "alice",
        {"disposition": "resolved", "sentiment": "neutral", "promise": promise},
    )
    assert r.status_code == 422
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    r = await api.post(
        f"/api/calls/{call_id}/wrap",
        "alice",
        {
            "disposition": "follow_up",
            "sentiment": "neutral",
            "notes": "a note that must not stay",
            "promise": {"text": "Send a new card", "due": yesterday},
        },
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "promise", "due"]
    context = await api.call(call_id)
    assert context["state"] == "connected" and context["notes"] == []
    r = await api.post(
        f"/api/calls/{call_id}/wrap",
        "alice",
        {"disposition": "follow_up", "sentiment": "neutral", "promise": promise},
    )
    assert r.status_code == 200, r.text
    assert r.json()["promises"][0]["text"] == "Send a new card"


async def test_supervisors_list_overdue_promises(api: Api, ws: Any) -> None:
    await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await _answer_and_wrap(
        api,
        "alice",
        call_id,
        {
            "disposition": "follow_up",
            "sentiment": "neutral",
            "promise": {"text": "Refund the fee", "due": _tomorrow()},
        },
    )
    sup = await api.login("super")
    r = await api.http.get("/api/promises", params={"overdue": "true"}, headers=sup)
    assert r.status_code == 200 and r.json() == []
    (open_one,) = (await api.http.get("/api/promises", headers=sup)).json()
    assert open_one["text"] == "Refund the fee" and not open_one["overdue"]
    # A week passes (the promise's day is moved back in the database itself).
    engine = create_async_engine(api.live.settings.database_url)
    try:
        async with engine.begin() as conn:
            week_ago = (datetime.now(UTC) - timedelta(days=7)).date()
            move = text("UPDATE promises SET due = :due").bindparams(bindparam("due", type_=Date))
            await conn.execute(move, {"due": week_ago})
    finally:
        await engine.dispose()
    (late,) = (await api.http.get("/api/promises?overdue=true", headers=sup)).json()
    assert late["id"] == open_one["id"] and late["overdue"]
    r = await api.http.get("/api/promises", headers=await api.login("alice"))
    assert r.status_code == 403
    r = await api.post(f"/api/promises/{late['id']}/kept", "super")
    assert r.status_code == 200
    r = await api.http.get("/api/promises?overdue=true", headers=sup)
    assert r.json() == []
