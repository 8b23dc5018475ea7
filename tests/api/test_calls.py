"""The call lifecycle through the public API and /ws, as agents and supervisors live it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from support import Api, LiveServer, Ws


async def test_screen_pop_carries_everything_the_caller_said(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call(collected={"card_last4": "4242"})
    offered = await alice.next("call.offered", call_id=call_id)
    pop = offered["data"]
    assert pop["customer"]["name"] == "Jane Doe"
    assert pop["customer"]["account_number"] == "12345678"
    assert pop["identity"]["verified"] is True
    assert pop["identity"]["method"] == "account_pin"
    assert pop["identity"]["verified_at"]
    assert pop["intent"] == "card_lost"
    assert pop["queue"] == "cards"
    assert pop["collected"] == {"card_last4": "4242"}
    assert [s["node"] for s in pop["ivr_path"]] == ["language", "account", "pin", "menu"]
    assert pop["ivr_path"][2]["input"] == "****"
    assert len(pop["history"]) == 3
    assert pop["history"][0]["intent"] == "loans"  # newest first
    assert pop["offer_expires_at"]
    assert offered["seq"] > 0 and offered["at"]
    # The same context over HTTP, for the agent it was offered to.
    context = await api.call(call_id, "alice")
    for key in ("customer", "identity", "intent", "collected", "ivr_path", "history"):
        assert context[key] == pop[key]
    assert set(context) >= {
        "id", "state", "caller_number", "language", "customer", "identity", "intent", "queue",
        "escalation_reason", "utterance", "collected", "ivr_path", "notes", "transfers",
        "history", "agent_id", "created_at", "queued_at", "connected_at", "ended_at",
    }  # fmt: skip


async def test_transfer_keeps_the_whole_context_plus_the_note(api: Api, ws: Any) -> None:
    alice, bob = await ws("alice"), await ws("bob")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    first = (await alice.next("call.offered", call_id=call_id))["data"]
    r = await api.post(f"/api/calls/{call_id}/accept", "alice")
    assert r.status_code == 200 and r.json()["state"] == "connected"
    await alice.next("call.connected", call_id=call_id)
    r = await api.post(f"/api/calls/{call_id}/notes", "alice", {"text": "Card blocked already."})
    assert r.status_code == 201
    await api.set_status("bob", "available")
    await api.login("bob")
    r = await api.post(
        f"/api/calls/{call_id}/transfer",
        "alice",
        {"agent_id": api.ids["bob"], "note": "Wants a replacement sent abroad."},
    )
    assert r.status_code == 200, r.text
    second = (await bob.next("call.offered", call_id=call_id))["data"]
    for key in ("customer", "identity", "intent", "collected", "ivr_path", "history"):
        assert second[key] == first[key]
    assert [n["text"] for n in second["notes"]] == [
        "Card blocked already.",
        "Wants a replacement sent abroad.",
    ]
    assert second["notes"][0]["author"]["display_name"] == "Alice Adams"
    (tr,) = second["transfers"]
    assert tr["from_agent"]["display_name"] == "Alice Adams"
    assert tr["to_agent"]["display_name"] == "Bob Brown"
    assert tr["note"] == "Wants a replacement sent abroad."
    # Alice is free again and sees the call leave.
    left = await alice.next(
        "call.updated", call_id=call_id, where=lambda d: d["agent_id"] == api.ids["bob"]
    )
    assert left["data"]["state"] == "offered"
    me = (await api.http.get("/api/me", headers=await api.login("alice"))).json()
    assert me["status"] == "available"
    assert (await api.post(f"/api/calls/{call_id}/accept", "bob")).status_code == 200
    r = await api.post(
        f"/api/calls/{call_id}/wrap",
        "bob",
        {"disposition": "resolved", "sentiment": "positive", "notes": "Sent to Madrid."},
    )
    assert r.status_code == 200 and r.json()["state"] == "ended"
    ended = await bob.next("call.ended", call_id=call_id)
    assert ended["data"]["disposition"] == "resolved"
    # Alice handled it before: she may still read it, but no longer act on it.
    assert (
        await api.http.get(f"/api/calls/{call_id}", headers=await api.login("alice"))
    ).status_code == 200
    r = await api.post(f"/api/calls/{call_id}/notes", "alice", {"text": "late"})
    assert r.status_code == 409


async def test_unscripted_request_is_escalated_assigned_and_reassigned(api: Api, ws: Any) -> None:
    sup = await ws("super")
    bob, alice = await ws("bob"), await ws("alice")
    await api.set_status("bob", "available")
    await api.set_status("alice", "away")
    call_id = await api.new_call(intent=None, utterance="my late husband's account needs closing")
    queued = await sup.next("call.queued", call_id=call_id)
    assert queued["data"] == {
        "call_id": call_id,
        "queue": "escalations",
        "escalation_reason": "unscripted",
    }
    r = await api.http.get("/api/escalations", headers=await api.login("super"))
    (esc,) = [e for e in r.json() if e["id"] == call_id]
    assert esc["reason"] == "unscripted"
    assert esc["utterance"] == "my late husband's account needs closing"
    assert esc["agent"] is None and esc["wait_s"] >= 0
    # Bob has no escalations skill: nothing is offered until a supervisor assigns it.
    await api.login("bob")
    await api.login("alice")
    r = await api.post(f"/api/calls/{call_id}/assign", "super", {"agent_id": api.ids["bob"]})
    assert r.status_code == 200, r.text
    offered = await bob.next("call.offered", call_id=call_id)
    assert offered["data"]["utterance"] == "my late husband's account needs closing"
    assert offered["data"]["escalation_reason"] == "unscripted"
    r = await api.post(f"/api/calls/{call_id}/assign", "super", {"agent_id": api.ids["alice"]})
    assert r.status_code == 200, r.text
    revoked = await bob.next("call.offer_revoked", call_id=call_id)
    assert revoked["data"] == {"call_id": call_id, "reason": "reassigned"}
    await alice.next("call.offered", call_id=call_id)
    r = await api.http.get("/api/escalations", headers=await api.login("super"))
    (esc,) = [e for e in r.json() if e["id"] == call_id]
    assert esc["agent"]["display_name"] == "Alice Adams"
    assert (await api.post(f"/api/calls/{call_id}/accept", "bob")).status_code == 409
    assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 200
    statuses = [e["data"] for e in sup.seen if e["type"] == "agent.status"]
    assert {"user_id": api.ids["bob"], "status": "offered"} in statuses


async def test_offer_timeout_requeues_and_sets_agent_away(server_factory: Any) -> None:
    live: LiveServer = server_factory(offer_timeout_s=0.5)
    api = Api(live)
    try:
        await api.login("alice")
        from support import Ws

        alice = await Ws(live.ws_url, api.tokens["alice"]).connect()
        await api.set_status("alice", "available")
        call_id = await api.new_call()
        offered = await alice.next("call.offered", call_id=call_id)
        revoked = await alice.next("call.offer_revoked", call_id=call_id)
        assert revoked["data"]["reason"] == "timeout"
        assert revoked["seq"] > offered["seq"]
        status = await alice.next("agent.status")
        assert status["data"] == {"user_id": api.ids["alice"], "status": "away"}
        call = await api.call(call_id)
        assert call["state"] == "queued" and call["agent_id"] is None
        assert call["queued_at"] == offered["data"]["queued_at"]
        assert (await api.post(f"/api/calls/{call_id}/accept", "alice")).status_code == 409
        await alice.close()
    finally:
        await api.http.aclose()


async def test_reject_goes_to_the_next_agent_never_back(api: Api, ws: Any) -> None:
    alice, bob = await ws("alice"), await ws("bob")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    r = await api.post(f"/api/calls/{call_id}/reject", "alice")
    assert r.status_code == 200
    me = (await api.http.get("/api/me", headers=await api.login("alice"))).json()
    assert me["status"] == "available"
    call = await api.call(call_id)
    assert call["state"] == "queued"
    await api.set_status("bob", "available")
    await bob.next("call.offered", call_id=call_id)
    assert not [
        e for e in alice.seen if e["type"] == "call.offered" and e["data"]["id"] == call_id
    ][1:]


async def test_caller_hangs_up_while_queued_or_offered(api: Api, ws: Any) -> None:
    sup, alice = await ws("super"), await ws("alice")
    queued_id = await api.new_call()
    r = await api.post(f"/api/calls/{queued_id}/hangup", None)
    assert r.status_code == 200 and r.json()["state"] == "abandoned"
    await sup.next("call.abandoned", call_id=queued_id)
    await api.set_status("alice", "available")
    offered_id = await api.new_call()
    await alice.next("call.offered", call_id=offered_id)
    assert (await api.post(f"/api/calls/{offered_id}/hangup", None)).status_code == 200
    revoked = await alice.next("call.offer_revoked", call_id=offered_id)
    assert revoked["data"]["reason"] == "abandoned"
    assert (await api.call(offered_id))["state"] == "abandoned"
    assert (await api.post(f"/api/calls/{offered_id}/hangup", None)).status_code == 409


async def test_hangup_while_connected_then_wrap_and_survey(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    await api.post(f"/api/calls/{call_id}/accept", "alice")
    assert (await api.post(f"/api/calls/{call_id}/hangup", None)).json()["state"] == "wrapup"
    me = (await api.http.get("/api/me", headers=await api.login("alice"))).json()
    assert me["status"] == "wrapup"
    r = await api.post(f"/api/calls/{call_id}/survey", None, {"csat": 4, "had_to_repeat": False})
    assert r.status_code == 200
    r = await api.post(
        f"/api/calls/{call_id}/wrap", "alice", {"disposition": "resolved", "sentiment": "neutral"}
    )
    assert r.status_code == 200
    call = await api.call(call_id)
    assert call["state"] == "ended" and call["csat"] == 4 and call["ended_at"]
    me = (await api.http.get("/api/me", headers=await api.login("alice"))).json()
    assert me["status"] == "available"
    # The next call of the same customer shows this one in its history, with its outcome.
    next_id = await api.new_call()
    history = (await api.call(next_id))["history"]
    assert history[0]["id"] == call_id
    assert history[0]["csat"] == 4 and history[0]["disposition"] == "resolved"


async def test_vip_first_then_longest_waiting(api: Api, ws: Any) -> None:
    bob = await ws("bob")
    standard = await api.new_call(verify=None, caller="+15551239999")
    vip = await api.new_call(caller="+15551230002", verify=("23456789", "4321"))
    later = await api.new_call(verify=None, caller="+15551238888")
    await api.set_status("bob", "available")
    first = await bob.next("call.offered")
    assert first["data"]["id"] == vip
    await api.post(f"/api/calls/{vip}/accept", "bob")
    await api.post(
        f"/api/calls/{vip}/wrap", "bob", {"disposition": "resolved", "sentiment": "neutral"}
    )
    second = await bob.next("call.offered")
    assert second["data"]["id"] == standard
    assert later != standard


async def test_status_change_waits_for_the_call_to_end(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    await api.post(f"/api/calls/{call_id}/accept", "alice")
    assert (await api.set_status("alice", "offline"))["status"] == "busy"
    await api.post(
        f"/api/calls/{call_id}/wrap", "alice", {"disposition": "resolved", "sentiment": "positive"}
    )
    me = (await api.http.get("/api/me", headers=await api.login("alice"))).json()
    assert me["status"] == "offline"


async def test_position_is_announced_and_never_increases(api: Api) -> None:
    first = await api.new_call(verify=None, caller="+15551239999")
    second = await api.new_call(verify=None, caller="+15551238888")
    pos = (await api.http.get(f"/api/calls/{second}/position", headers=api.ivr)).json()
    assert pos["state"] == "queued" and pos["queue"] == "cards" and pos["position"] == 2
    vip = await api.new_call(caller="+15551230002", verify=("23456789", "4321"))
    again = (await api.http.get(f"/api/calls/{second}/position", headers=api.ivr)).json()
    assert again["position"] == 2  # a vip joined ahead, but the caller was told 2
    assert (await api.http.get(f"/api/calls/{vip}/position", headers=api.ivr)).json()[
        "position"
    ] == 1
    await api.post(f"/api/calls/{first}/hangup", None)
    assert (await api.http.get(f"/api/calls/{second}/position", headers=api.ivr)).json()[
        "position"
    ] == 2


async def test_escalate_from_a_connected_call(api: Api, ws: Any) -> None:
    alice, carol = await ws("alice"), await ws("carol")
    await api.set_status("alice", "available")
    call_id = await api.new_call(intent="billing")
    await alice.next("call.offered", call_id=call_id)
    await api.post(f"/api/calls/{call_id}/accept", "alice")
    r = await api.post(f"/api/calls/{call_id}/escalate", "alice", {"reason": "fraud_suspected"})
    assert r.status_code == 200
    assert r.json()["queue"] == "escalations" and r.json()["escalation_reason"] == "fraud_suspected"
    await api.set_status("carol", "available")
    offered = await carol.next("call.offered", call_id=call_id)
    assert offered["data"]["intent"] == "billing"
    assert offered["data"]["identity"]["verified"] is True


async def test_queues_list_every_queue_with_counts(api: Api) -> None:
    await api.set_status("bob", "available")
    await api.new_call(intent="billing")
    r = await api.http.get("/api/queues", headers=await api.login("alice"))
    assert r.status_code == 200
    queues = {q["name"]: q for q in r.json()}
    assert {"billing", "cards", "loans", "escalations"} <= set(queues)
    assert queues["billing"]["waiting"] == 1
    assert queues["loans"]["agents_available"] == 1
    assert queues["loans"]["agents_signed_in"] == 1


async def test_burst_of_handoffs_never_offers_one_call_twice(api: Api, ws: Any) -> None:
    sup = await ws("super")
    for name in ("alice", "bob", "carol"):
        await api.set_status(name, "available")
    n = 24

    async def handoff(i: int) -> int:
        return await api.new_call(
            verify=None,
            caller=f"+1555200{i:04d}",
            intent="billing" if i % 2 else "card_lost",
            steps=[],
        )

    ids = await asyncio.gather(*(handoff(i) for i in range(n)))

    async def work(name: str) -> None:
        # Each agent accepts and wraps whatever it is offered until every call is done.
        headers = await api.login(name)
        while True:
            r = await api.http.get("/api/calls?state=offered", headers=headers)
            mine = [c for c in r.json() if c["agent_id"] == api.ids[name]]
            if not mine:
                r = await api.http.get("/api/calls?state=ended", headers=await api.login("super"))
                if {c["id"] for c in r.json()} >= set(ids):
                    return
                await asyncio.sleep(0)  # yield to the other agents' requests
                continue
            cid = mine[0]["id"]
            assert (await api.post(f"/api/calls/{cid}/accept", name)).status_code == 200
            await api.post(
                f"/api/calls/{cid}/wrap", name, {"disposition": "resolved", "sentiment": "neutral"}
            )

    await asyncio.wait_for(asyncio.gather(*(work(n) for n in ("alice", "bob", "carol"))), 60)
    # Replay the whole outbox as the supervisor sees it and check the invariant.
    from support import Ws

    full = await Ws(api.live.ws_url, api.tokens["super"]).connect(last_seq=0)
    holder: dict[int, int] = {}
    holding: dict[int, int] = {}
    for event in full.seen:
        data = event["data"]
        if event["type"] == "call.offered":
            assert data["id"] not in holder, "a call offered to two agents at once"
            assert data["agent_id"] not in holding, "an agent holding two offers"
            holder[data["id"]] = data["agent_id"]
            holding[data["agent_id"]] = data["id"]
        elif event["type"] in ("call.offer_revoked",):
            agent = holder.pop(data["call_id"])
            holding.pop(agent)
        elif event["type"] == "call.ended":
            agent = holder.pop(data["id"])
            holding.pop(agent)
    assert not holder
    ended = {e["data"]["id"] for e in full.seen if e["type"] == "call.ended"}
    assert ended == set(ids)
    await full.close()
    del sup


async def test_resume_replays_exactly_the_missed_events(api: Api, ws: Any) -> None:
    alice = await ws("alice")
    await api.set_status("alice", "available")
    first = await api.new_call()
    await alice.next("call.offered", call_id=first)
    await api.post(f"/api/calls/{first}/accept", "alice")
    await alice.next("call.connected", call_id=first)
    last = alice.last_seq
    await alice.close()
    # While disconnected: the call is wrapped and a new one is offered.
    await api.post(
        f"/api/calls/{first}/wrap", "alice", {"disposition": "resolved", "sentiment": "positive"}
    )
    second = await api.new_call(intent="billing")
    sup_view = await ws("super", 0)
    missed = [
        e["seq"]
        for e in sup_view.seen
        if e["seq"] > (last or 0)
        and (e["type"] != "call.created" and e["type"] != "call.queued")
        and e["type"] != "queue.stats"
        and e["type"] != "call.abandoned"
        and (
            e["data"].get("user_id") == api.ids["alice"]
            or e["data"].get("agent_id") == api.ids["alice"]
        )
    ]
    again = await ws("alice", last)
    replayed = [e["seq"] for e in again.seen]
    assert replayed == sorted(replayed)
    assert all(s > (last or 0) for s in replayed)
    assert set(missed) <= set(replayed)
    assert any(e["type"] == "call.offered" and e["data"]["id"] == second for e in again.seen)
    assert any(e["type"] == "call.ended" and e["data"]["id"] == first for e in again.seen)
    assert again.ready_seq is not None and again.ready_seq >= max(replayed)
    # Nothing is sent twice after ready: a live event comes once.
    await api.post(f"/api/calls/{second}/accept", "alice")
    connected = await again.next("call.connected", call_id=second)
    assert connected["seq"] > again.ready_seq
    fresh = await ws("alice")
    assert fresh.seen == []  # last_seq null: no replay


async def alice_on_a_call(live: LiveServer, api: Api) -> tuple[Ws, int]:
    """Alice, signed in with a socket, has accepted a call: her socket and the call's id."""
    await api.login("alice")
    alice = await Ws(live.ws_url, api.tokens["alice"]).connect()
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    await alice.next("call.offered", call_id=call_id)
    await api.post(f"/api/calls/{call_id}/accept", "alice")
    return alice, call_id


async def test_wrapup_pause_then_available_again(server_factory: Any) -> None:
    live: LiveServer = server_factory(wrapup_s=0.5)
    api = Api(live)
    try:
        alice, call_id = await alice_on_a_call(live, api)
        await api.post(
            f"/api/calls/{call_id}/wrap",
            "alice",
            {"disposition": "resolved", "sentiment": "neutral"},
        )
        me = (await api.http.get("/api/me", headers=await api.login("alice"))).json()
        assert me["status"] == "wrapup"
        # When it ends, for the agent's countdown: in the event and in /api/me.
        wrapping = await alice.next("agent.status", where=lambda d: d["status"] == "wrapup")
        ends = datetime.fromisoformat(wrapping["data"]["wrapup_until"])
        assert ends == datetime.fromisoformat(me["wrapup_until"])
        back = await alice.next("agent.status", where=lambda d: d["status"] == "available")
        assert back["data"]["user_id"] == api.ids["alice"]
        assert "wrapup_until" not in back["data"]
        me = (await api.http.get("/api/me", headers=await api.login("alice"))).json()
        assert me["wrapup_until"] is None
        # Available again means the next call comes at once.
        second = await api.new_call(intent="billing")
        await alice.next("call.offered", call_id=second)
        await alice.close()
    finally:
        await api.http.aclose()


async def test_wrapup_after_the_caller_hung_up_first_ends_too(server_factory: Any) -> None:
    live: LiveServer = server_factory(wrapup_s=0.5)
    api = Api(live)
    try:
        alice, call_id = await alice_on_a_call(live, api)
        # The caller hangs up on Alice: she is in wrap-up until she wraps the call.
        assert (await api.post(f"/api/calls/{call_id}/hangup", None)).status_code == 200
        await alice.next("agent.status", where=lambda d: d["status"] == "wrapup")
        wrap = {"disposition": "resolved", "sentiment": "neutral"}
        assert (await api.post(f"/api/calls/{call_id}/wrap", "alice", wrap)).status_code == 200
        # Wrapped: the after-call work has its deadline now, and ends.
        timed = await alice.next("agent.status", where=lambda d: "wrapup_until" in d)
        assert timed["data"]["status"] == "wrapup"
        await alice.next("agent.status", where=lambda d: d["status"] == "available")
        await alice.close()
    finally:
        await api.http.aclose()


async def test_supervisors_see_everything_agents_only_their_own(api: Api, ws: Any) -> None:
    sup, alice, bob = await ws("super"), await ws("alice"), await ws("bob")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    created = await sup.next("call.created", call_id=call_id)
    assert created["data"]["caller_number"] == "+15551230001"
    assert created["data"]["state"] == "ivr"
    await sup.next("call.queued", call_id=call_id)
    await sup.next("call.offered", call_id=call_id)
    stats = await sup.next("queue.stats", where=lambda d: any(q["name"] == "cards" for q in d))
    assert {"name", "waiting", "longest_wait_s", "agents_available", "agents_signed_in"} <= set(
        stats["data"][0]
    )
    await alice.next("call.offered", call_id=call_id)
    await api.post(f"/api/calls/{call_id}/accept", "alice")
    await sup.next("call.connected", call_id=call_id)
    statuses = [e["data"] for e in sup.seen if e["type"] == "agent.status"]
    assert {"user_id": api.ids["alice"], "status": "busy"} in statuses
    # Bob's own status change is the one thing he has heard.
    await api.set_status("bob", "away")
    await bob.next("agent.status")
    assert all(e["type"] == "agent.status" for e in bob.seen)
    assert not [
        e for e in alice.seen if e["type"] in ("call.created", "call.queued", "queue.stats")
    ]


async def test_the_offer_is_the_first_news_of_it_and_supervisors_get_no_stale_context(
    api: Api, ws: Any
) -> None:
    sup, alice = await ws("super"), await ws("alice")
    await api.set_status("alice", "available")
    await alice.next("agent.status", where=lambda d: d["status"] == "available")
    call_id = await api.new_call()
    offered = await alice.next("call.offered", call_id=call_id)
    status = await alice.next("agent.status", where=lambda d: d["status"] == "offered")
    # The screen pop goes out first: the agent's socket sends in order.
    assert offered["seq"] < status["seq"]
    # Supervisors get the handoff's news once, in the offer: no call.updated of the queued call
    # that the same commit offered.
    sup_offer = await sup.next("call.offered", call_id=call_id)
    assert sup_offer["seq"] == offered["seq"]
    handed = [e for e in sup.seen if e["seq"] <= offered["seq"]]
    stale = [
        e for e in handed if e["type"] == "call.updated" and e["data"]["id"] == call_id
        and e["data"]["state"] == "queued"
    ]  # fmt: skip
    assert stale == []


async def test_a_call_waiting_in_another_queue_does_not_hold_up_a_handoff_s_offer(
    api: Api, ws: Any
) -> None:
    """The handoff offers in its own commit: the calls already queued are read, the one handed
    off is judged as the handoff left it, and each goes to an agent with its queue's skill."""
    sup, alice = await ws("super"), await ws("alice")
    waiting = await api.new_call(intent="loans", verify=None, caller="+15551239999")
    await sup.next("call.updated", call_id=waiting, where=lambda d: d["state"] == "queued")
    await api.set_status("alice", "available")  # billing and cards, no loans
    await alice.next("agent.status", where=lambda d: d["status"] == "available")
    call_id = await api.new_call()
    offered = await alice.next("call.offered", call_id=call_id)
    assert offered["data"]["queue"] == "cards"
    await sup.next("call.offered", call_id=call_id)
    stale = [
        e for e in sup.seen if e["type"] == "call.updated" and e["data"]["id"] == call_id
        and e["data"]["state"] == "queued"
    ]  # fmt: skip
    assert stale == [], "the handed-off call was offered by a later transaction"
    still = await api.call(waiting)
    assert still["state"] == "queued" and still["queue"] == "loans"
    assert not [e for e in alice.seen if e["type"] == "call.offered" and e["data"]["id"] == waiting]


async def test_a_call_nobody_can_take_yet_is_shown_to_supervisors_as_queued(
    api: Api, ws: Any
) -> None:
    sup = await ws("super")
    call_id = await api.new_call(collected={"card_last4": "4242"})
    updated = await sup.next(
        "call.updated", call_id=call_id, where=lambda d: d["state"] == "queued"
    )
    assert updated["data"]["intent"] == "card_lost"
    assert updated["data"]["collected"] == {"card_last4": "4242"}


async def test_calls_are_listed_by_agent_and_by_when_they_were_first_queued(
    api: Api, ws: Any
) -> None:
    """The filters behind a report's figures: an agent's calls, within its period."""
    alice = await ws("alice")
    await api.set_status("alice", "available")
    started = datetime.now(UTC)
    answered = await api.new_call(intent="billing")
    await alice.next("call.offered", call_id=answered)
    assert (await api.post(f"/api/calls/{answered}/accept", "alice")).status_code == 200
    waiting = await api.new_call(intent="loans")  # nobody takes loans calls: it waits
    boss = await api.as_("super")

    async def listed(**params: str) -> list[int]:
        r = await api.http.get("/api/calls", params=params, headers=boss)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()]

    period = {"from": started.isoformat(), "to": (started + timedelta(hours=1)).isoformat()}
    assert await listed(agent_id=str(api.ids["alice"])) == [answered]
    assert await listed(**period) == [waiting, answered]
    assert await listed(**period, agent_id=str(api.ids["alice"])) == [answered]
    later = {"from": (started + timedelta(hours=1)).isoformat()}
    assert await listed(**later) == []
    # An agent's list stays hers whatever the filter.
    r = await api.http.get(
        "/api/calls", params={"agent_id": api.ids["alice"]}, headers=await api.as_("bob")
    )
    assert r.status_code == 200 and r.json() == []
    for bad, loc in [
        ({"from": "2026-12-03T10:00:00"}, ["query", "from"]),  # no time zone
        ({**period, "from": period["to"]}, ["query", "to"]),
        ({"agent_id": "0"}, ["query", "agent_id"]),
    ]:
        r = await api.http.get("/api/calls", params=bad, headers=boss)
        assert r.status_code == 422, r.text
        assert [p["loc"] for p in r.json()["detail"]] == [loc]
