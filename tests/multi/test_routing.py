"""Handoffs spread over three instances, agents streaming from all three: one offer at a time,
each reaching its agent wherever connected, by a wake-up rather than the safety poll."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from .cluster import (
    Cluster,
    EventStream,
    answer_calls,
    check_offers,
    full_replay,
    offer_delays,
    offers,
    seqs,
)
from .conftest import ClusterFactory

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

POLL_S = 5.0
# Well under the poll interval: an offer delivered by the poll would wait 2.5 s on average.
WAKE_S = 2.0
CALLS = 24
AGENTS = 6


async def test_offers_reach_agents_on_every_instance_once_at_a_time_and_at_once(
    cluster_factory: ClusterFactory,
) -> None:
    cluster: Cluster = await cluster_factory(3, poll_interval_s=POLL_S)
    agents = await cluster.add_agents(AGENTS)
    i0, i1, i2 = cluster.instances
    await cluster.login("super")
    supervisor = EventStream(i2.ws_url, cluster.tokens["super"])
    await supervisor.connect()
    for n, agent in enumerate(agents):
        # Signed in through another instance than the one the agent's stream comes from.
        await cluster.set_status(agent, "available", via=cluster.instances[(n + 1) % 3])

    handed_off: dict[int, float] = {}

    async def caller(n: int) -> None:
        # Made on one instance, handed off on the next: nothing may rely on local memory.
        via = cluster.instances[n % 3]
        call_id = await cluster.new_call(n, via=via)
        handed_off[call_id] = time.monotonic()

    async with asyncio.TaskGroup() as group:
        workers = [group.create_task(answer_calls(cluster, agent)) for agent in agents]
        # All at once: the agents are fewer than the calls, so most offers follow a wrap.
        await asyncio.gather(*(caller(n) for n in range(CALLS)))
        await supervisor.wait(
            lambda events: sum(e["type"] == "call.ended" for e in events) == CALLS,
            within=90,
            what="every call wrapped",
        )
        for worker in workers:
            worker.cancel()

    calls = await cluster.calls()
    assert {calls[c]["state"] for c in handed_off} == {"ended"}

    # Every instance served some handoffs and some agents' streams.
    assert {a.home.name for a in agents} == {i0.name, i1.name, i2.name}

    replay = await cluster.supervisor_replay()
    counts = check_offers(replay)
    assert counts["call.ended"] == CALLS
    assert counts["call.connected"] == CALLS
    assert counts.get("call.offer_revoked", 0) == 0
    assert counts["call.offered"] == CALLS

    # Each offer reached its agent, on whichever instance the agent's stream was.
    for agent in agents:
        mine = [e for e in offers(replay) if e["data"]["agent_id"] == agent.id]
        assert seqs(agent.stream.of_type("call.offered")) == seqs(mine), agent.username
        assert len(mine) >= 1, f"{agent.username} got no call"

    # And at once: woken through Redis, not found by the next poll.
    delays = [d for agent in agents for d in offer_delays(agent, handed_off)]
    assert len(delays) == CALLS
    print(f"offer delays: median {statistics.median(delays):.3f} s, max {max(delays):.3f} s")
    assert max(delays) < WAKE_S, sorted(delays)

    # No gap in any stream: each saw every one of its events after its ready.
    last = replay[-1]["seq"]
    await supervisor.wait(lambda events: events and events[-1]["seq"] >= last)
    live = [s for s in seqs(supervisor.events) if s <= last]
    assert live == [s for s in seqs(replay) if s > (supervisor.ready_seq or 0)]
    for agent in agents:
        own = await full_replay(agent.home.ws_url, agent.token)
        ready = agent.stream.ready_seq or 0
        assert seqs(agent.stream.events) == [s for s in seqs(own) if s > ready], agent.username
    await supervisor.close()
