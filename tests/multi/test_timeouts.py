"""Offer deadlines with three instances: every one of them watches the deadline, one expires it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from .cluster import Cluster, EventStream, check_offers, offers, seqs
from .conftest import ClusterFactory

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

TIMEOUT_S = 3.0
POLL_S = 1.0
AGENTS = 6
ROUNDS = 3
# From an offer's deadline to its revoke: the instance that made the offer sleeps till then.
LATE_S = 3.0


async def test_each_unanswered_offer_expires_exactly_once(
    cluster_factory: ClusterFactory,
) -> None:
    # The poll is shorter than the timeout: by each deadline all three instances know it and
    # all three try to expire the offer.
    cluster: Cluster = await cluster_factory(3, offer_timeout_s=TIMEOUT_S, poll_interval_s=POLL_S)
    agents = await cluster.add_agents(AGENTS)
    await cluster.login("super")
    supervisor = EventStream(cluster.instances[0].ws_url, cluster.tokens["super"])
    await supervisor.connect()

    # Nobody answers. Each round the agents come back and every call is offered and expires.
    calls = []
    for round_ in range(1, ROUNDS + 1):
        await asyncio.gather(
            *(
                cluster.set_status(agent, "available", via=cluster.instances[(n + round_) % 3])
                for n, agent in enumerate(agents)
            )
        )
        if round_ == 1:
            calls = [await cluster.new_call(n, via=cluster.instances[n % 3]) for n in range(AGENTS)]
        for agent in agents:
            await agent.stream.wait(
                lambda events, n=round_: (
                    sum(e["type"] == "call.offer_revoked" for e in events) == n
                ),
                what=f"{agent.username}'s offer of round {round_} to expire",
            )

    # One more change through each instance, committed after every expiry: a duplicate expiry
    # would have committed before these (seq follows commit order).
    for n, agent in enumerate(agents):
        await cluster.set_status(agent, "offline", via=cluster.instances[n % 3])
    replay = await cluster.supervisor_replay()
    await supervisor.wait(lambda events: events and events[-1]["seq"] >= replay[-1]["seq"])

    counts = check_offers(replay)
    assert counts["call.offered"] == counts["call.offer_revoked"] == AGENTS * ROUNDS
    assert counts.get("call.connected", 0) == 0
    revokes = {e["seq"]: e for e in replay if e["type"] == "call.offer_revoked"}
    assert {e["data"]["reason"] for e in revokes.values()} == {"timeout"}

    # Each revoke answers the offer before it, not early, and soon after the deadline.
    for offer in offers(replay):
        call = offer["data"]["id"]
        revoke = next(
            e
            for s, e in sorted(revokes.items())
            if s > offer["seq"] and e["data"]["call_id"] == call
        )
        deadline = datetime.fromisoformat(offer["data"]["offer_expires_at"])
        at = datetime.fromisoformat(revoke["at"])
        assert deadline <= at < deadline + timedelta(seconds=LATE_S), (offer["seq"], at, deadline)

    # Each agent: ROUNDS offers, each revoked once, and away after each.
    for agent in agents:
        mine = agent.stream.events
        assert len(agent.stream.of_type("call.offered")) == ROUNDS, agent.username
        assert len(agent.stream.of_type("call.offer_revoked")) == ROUNDS, agent.username
        statuses = [e["data"]["status"] for e in mine if e["type"] == "agent.status"]
        assert statuses.count("away") == ROUNDS, (agent.username, statuses)
        assert seqs(mine) == sorted(set(seqs(mine)))

    # Back in the queue, in order, with nobody left to take them.
    state = await cluster.calls()
    assert {state[c]["state"] for c in calls} == {"queued"}
    await supervisor.close()
