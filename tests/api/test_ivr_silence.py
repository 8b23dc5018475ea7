"""Calls whose phone tree went away: abandoned after TELLONCE_IVR_SILENCE_S without a word from
the tree, never while it still speaks for them."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from support import Api, LiveServer, Ws

SILENCE_S = 5.0
WITHIN = SILENCE_S + 10


async def _abandoned(sup: Ws, call_id: int) -> dict[str, Any]:
    """The call.abandoned of this call, already received or still to come."""
    for event in sup.seen:
        if event["type"] == "call.abandoned" and event["data"]["id"] == call_id:
            return event
    return await sup.next("call.abandoned", call_id=call_id, within=WITHIN)


async def test_a_call_whose_phone_tree_fell_silent_is_abandoned_and_one_still_talking_is_not(
    server_factory: Any,
) -> None:
    live: LiveServer = server_factory(ivr_silence_s=SILENCE_S, poll_interval_s=0.2)
    api = Api(live)
    try:
        await api.login("super")
        sup = await Ws(live.ws_url, api.tokens["super"]).connect()
        one_step = [("language", "For English press 1", "1")]
        last_word: dict[int, datetime] = {}

        async def new_call(caller: str) -> int:
            sent = datetime.now(UTC)
            call_id = await api.new_call(caller, verify=None, steps=one_step, handoff=False)
            last_word[call_id] = sent
            return call_id

        silent = await new_call("+15557710001")
        stepping = await new_call("+15557710002")
        verifying = await new_call("+15557710003")
        stop = asyncio.Event()

        async def keep_talking() -> None:
            """The tree of two calls still speaks for them: steps for one, PIN tries for the
            other (every try counts, even once the call has none left)."""
            while not stop.is_set():
                last_word[stepping] = datetime.now(UTC)
                step = {"node": "menu", "prompt": "Press 1", "input": "1"}
                r = await api.post(f"/api/calls/{stepping}/steps", None, step)
                assert r.status_code == 201, r.text
                last_word[verifying] = datetime.now(UTC)
                pin = {"account_number": "99999999", "pin": "0000"}
                r = await api.post(f"/api/calls/{verifying}/verify", None, pin)
                assert r.status_code == 200, r.text
                # A caller's pace between answers, not a wait for something to happen.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

        talking = asyncio.create_task(keep_talking())
        try:
            event = await _abandoned(sup, silent)
            assert event["data"]["state"] == "abandoned"
            ended = datetime.fromisoformat(event["data"]["ended_at"])
            assert ended >= last_word[silent] + timedelta(seconds=SILENCE_S)
            for call_id in (stepping, verifying):
                assert (await api.call(call_id))["state"] == "ivr"
        finally:
            stop.set()
            await talking
        # The tree that comes back to an abandoned call is told so.
        r = await api.post(f"/api/calls/{silent}/steps", None, {"node": "n", "prompt": "p"})
        assert r.status_code == 409
        r = await api.post(f"/api/calls/{silent}/handoff", None, {"intent": "loans"})
        assert r.status_code == 409
        assert "the phone tree was silent too long" in r.json()["detail"]
        # Supervisors can read why it ended, and that nobody ended it by hand.
        r = await api.http.get(
            "/api/audit",
            params={"action": "call.abandoned_silent", "call_id": silent},
            headers=await api.as_("super"),
        )
        [entry] = r.json()
        assert entry["actor"] == "system" and entry["details"]["silence_s"] == SILENCE_S
        # Once quiet, the others go too, each a whole silence after its own last word.
        for call_id in (stepping, verifying):
            event = await _abandoned(sup, call_id)
            ended = datetime.fromisoformat(event["data"]["ended_at"])
            assert ended >= last_word[call_id] + timedelta(seconds=SILENCE_S)
        assert [e["data"]["id"] for e in sup.seen if e["type"] == "call.abandoned"].count(
            silent
        ) == 1
        await sup.close()
    finally:
        await api.http.aclose()
