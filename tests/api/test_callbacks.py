"""Callbacks that keep the caller's place: the phone tree's offer, the request and the agent's
call back, through the public API and /ws."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from support import DEADLINE, Api, LiveServer, Ws

OFFER_AFTER_S = 2.0


async def _until_offered(api: Api, call_id: int) -> dict[str, Any]:
    """The call's position once the phone tree may offer a callback, within the deadline."""
    deadline = time.monotonic() + DEADLINE
    while True:
        r = await api.http.get(f"/api/calls/{call_id}/position", headers=api.ivr)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["callback_offer"]:
            return body
        assert body["callback_offer_in_s"] is not None, body
        assert time.monotonic() < deadline, "no callback offer came"
        await asyncio.sleep(0.1)


async def test_a_callback_keeps_its_place_and_everything_collected(server_factory: Any) -> None:
    live: LiveServer = server_factory(callback_offer_after_s=OFFER_AFTER_S)
    api = Api(live)
    alice: Ws | None = None
    try:
        await api.login("alice")
        alice = await Ws(live.ws_url, api.tokens["alice"]).connect()
        older = await api.new_call(collected={"card_last4": "4321"})
        newer = await api.new_call(caller="+15559990000", verify=None)
        # Too early: nobody has waited long enough to be offered a callback.
        r = await api.post(f"/api/calls/{newer}/callback", None, {})
        assert r.status_code == 409, r.text
        before = await api.call(older)
        assert before["callback"] is None

        position = await _until_offered(api, older)
        assert position["position"] == 1 and position["callback_offer_in_s"] == 0
        r = await api.post(f"/api/calls/{older}/callback", None, {"number": "+15557654321"})
        assert r.status_code == 200, r.text
        assert r.json()["callback"]["number"] == "+15557654321"
        # The caller hangs up: the call is not abandoned, and keeps its place.
        r = await api.post(f"/api/calls/{older}/hangup", None)
        assert r.status_code == 200, r.text
        after = await api.call(older)
        assert after["state"] == "queued"
        assert after["queued_at"] == before["queued_at"]
        r = await api.http.get(f"/api/calls/{older}/position", headers=api.ivr)
        assert r.json()["position"] == 1
        assert not r.json()["callback_offer"] and r.json()["callback_offer_in_s"] is None
        # Asked once only.
        r = await api.post(f"/api/calls/{older}/callback", None, {})
        assert r.status_code == 409, r.text

        await api.set_status("alice", "available")
        offered = (await alice.next("call.offered"))["data"]
        assert offered["id"] == older
        assert offered["callback"]["number"] == "+15557654321"
        assert offered["callback"]["called_back_at"] is None
        assert offered["collected"] == {"card_last4": "4321"}
        assert offered["identity"]["verified"] is True
        assert offered["intent"] == "card_lost"
        # Only the agent on the call, once connected, records the call back.
        r = await api.post(f"/api/calls/{older}/called-back", "alice")
        assert r.status_code == 409, r.text
        assert (await api.post(f"/api/calls/{older}/accept", "alice")).status_code == 200
        r = await api.post(f"/api/calls/{older}/called-back", "alice")
        assert r.status_code == 200, r.text
        context = r.json()
        assert context["state"] == "connected"
        assert context["callback"]["called_back_at"] is not None
        # The wait counted until Alice took the call, the time after the request included.
        assert context["effort"]["wait_seconds"] >= OFFER_AFTER_S
        assert (await api.post(f"/api/calls/{older}/called-back", "alice")).status_code == 409
        # A call with no callback has none to record.
        r = await api.post(f"/api/calls/{newer}/called-back", "alice")
        assert r.status_code == 404
        r = await api.post(
            f"/api/calls/{older}/wrap", "alice", {"disposition": "resolved", "sentiment": "neutral"}
        )
        assert r.status_code == 200, r.text
    finally:
        if alice is not None:
            await alice.close()
        await api.http.aclose()


async def test_the_callback_number_is_the_callers_by_default(server_factory: Any) -> None:
    live: LiveServer = server_factory(callback_offer_after_s=1)
    api = Api(live)
    try:
        call_id = await api.new_call(caller="+15559990001", verify=None)
        await _until_offered(api, call_id)
        r = await api.post(f"/api/calls/{call_id}/callback", None, {})
        assert r.status_code == 200, r.text
        assert r.json()["callback"]["number"] == "+15559990001"
        r = await api.post(f"/api/calls/{call_id}/callback", None, {"number": "12"})
        assert r.status_code == 422
        assert (await api.call(call_id))["callback"]["number"] == "+15559990001"
    finally:
        await api.http.aclose()


async def test_callbacks_off_are_never_offered(server_factory: Any) -> None:
    live: LiveServer = server_factory(callback_offer_after_s=0)
    api = Api(live)
    try:
        call_id = await api.new_call()
        r = await api.http.get(f"/api/calls/{call_id}/position", headers=api.ivr)
        assert r.json()["callback_offer"] is False and r.json()["callback_offer_in_s"] is None
        r = await api.post(f"/api/calls/{call_id}/callback", None, {})
        assert r.status_code == 409, r.text
        r = await api.post(f"/api/calls/{call_id}/callback", None, {"number": "not a number"})
        assert r.status_code == 422
        r = await api.post(f"/api/calls/{call_id}/hangup", None)
        assert r.json()["state"] == "abandoned"
    finally:
        await api.http.aclose()
