"""Redis restarted under two instances: no event is lost, and wake-ups resume when it is back."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from app.realtime.outbox import CHANNEL

from .cluster import (
    DEADLINE_S,
    Agent,
    Cluster,
    EventStream,
    RedisServer,
    answer_calls,
    check_offers,
    eventually,
    full_replay,
    offer_delays,
    offers,
    seqs,
    wait_ready,
)
from .conftest import ClusterFactory

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

POLL_S = 5.0
WAKE_S = 2.0
AGENTS = 4
# A handoff must not wait on a Redis that is down: publishing gives up at once.
PROMPT_S = 3.0


async def readiness_is(cluster: Cluster, **expected: object) -> bool:
    """Whether every instance's /readyz answers as expected: status code and checks."""
    for instance in cluster.instances:
        async with httpx.AsyncClient(base_url=instance.base_url, timeout=10) as http:
            r = await http.get("/readyz")
        found = {"status": r.status_code, **r.json()["checks"]}
        if any(found[k] != v for k, v in expected.items()):
            return False
    return True


async def test_events_survive_a_redis_restart_and_wake_ups_resume(
    cluster_factory: ClusterFactory, redis_server: RedisServer
) -> None:
    await redis_server.wait_ping()
    cluster: Cluster = await cluster_factory(2, redis_url=redis_server.url, poll_interval_s=POLL_S)
    agents = await cluster.add_agents(AGENTS)
    await cluster.login("super")
    supervisor = EventStream(cluster.instances[1].ws_url, cluster.tokens["super"])
    await supervisor.connect()
    for n, agent in enumerate(agents):
        await cluster.set_status(agent, "available", via=cluster.instances[(n + 1) % 2])
    await eventually(lambda: redis_server.subscribers(CHANNEL) == 2, what="both hubs subscribed")

    handed_off: dict[int, float] = {}
    phases: list[list[int]] = []
    numbers = iter(range(1000))

    async def burst(count: int) -> None:
        """count handoffs, spread over the instances; returns once every call is wrapped."""
        phase: list[int] = []
        for _ in range(count):
            n = next(numbers)
            started = time.monotonic()
            call_id = await cluster.new_call(n, via=cluster.instances[n % 2])
            handed_off[call_id] = time.monotonic()
            assert handed_off[call_id] - started < 2 * PROMPT_S, "a handoff waited on Redis"
            phase.append(call_id)
        phases.append(phase)
        await supervisor.wait(
            lambda events: (
                {e["data"]["id"] for e in events if e["type"] == "call.ended"} >= set(phase)
            ),
            within=60,
            what="the burst's calls answered and wrapped",
        )

    async with asyncio.TaskGroup() as group:
        workers = [group.create_task(answer_calls(cluster, agent)) for agent in agents]

        await burst(AGENTS)

        # Down: every wake-up is lost; the instances say so, and the poll delivers instead.
        await asyncio.to_thread(redis_server.shutdown)
        await eventually(
            lambda: readiness_is(cluster, status=503, bus=False, database=True),
            what="both instances unready",
        )
        await burst(AGENTS)

        # Back: the instances are ready again, their hubs resubscribe, and offers arrive at once.
        redis_server.start()
        await redis_server.wait_ping()
        for instance in cluster.instances:
            await wait_ready(instance, within=20)
        await eventually(
            lambda: redis_server.subscribers(CHANNEL) == 2,
            within=20,
            what="both hubs subscribed again",
        )
        await burst(2 * AGENTS)

        for worker in workers:
            worker.cancel()

    delays = _delays_by_call(agents, handed_off)
    before, during, after = ([delays[c] for c in phase] for phase in phases)
    print(f"offer delays: before {before}, during {during}, after {after}")
    assert max(before) < WAKE_S and max(after) < WAKE_S
    assert max(during) < POLL_S + WAKE_S

    replay = await cluster.supervisor_replay()
    counts = check_offers(replay)
    assert counts["call.ended"] == counts["call.offered"] == len(handed_off)

    # Every event reached every stream, the outage notwithstanding: no gap, no repeat.
    last = replay[-1]["seq"]
    await supervisor.wait(lambda events: events and events[-1]["seq"] >= last)
    live = [s for s in seqs(supervisor.events) if s <= last]
    assert live == [s for s in seqs(replay) if s > (supervisor.start_seq or 0)]
    for agent in agents:
        own = await full_replay(agent.home.ws_url, agent.token)
        start = agent.stream.start_seq or 0
        assert seqs(agent.stream.events) == [s for s in seqs(own) if s > start], agent.username
    await supervisor.close()


def _delays_by_call(agents: list[Agent], handed_off: dict[int, float]) -> dict[int, float]:
    by_call = {}
    for agent in agents:
        for offer, delay in zip(
            agent.stream.of_type("call.offered"), offer_delays(agent, handed_off), strict=True
        ):
            by_call[offer["data"]["id"]] = delay
    return by_call


async def test_a_frozen_redis_holds_up_no_request(
    cluster_factory: ClusterFactory, redis_server: RedisServer
) -> None:
    """A Redis that stops answering without closing its sockets (paused, or a network that
    drops packets): every publish would wait for its socket timeouts."""
    await redis_server.wait_ping()
    cluster: Cluster = await cluster_factory(2, redis_url=redis_server.url, poll_interval_s=POLL_S)
    agents = await cluster.add_agents(AGENTS)
    for n, agent in enumerate(agents):
        await cluster.set_status(agent, "available", via=cluster.instances[n % 2])
    await eventually(lambda: redis_server.subscribers(CHANNEL) == 2, what="both hubs subscribed")

    handed_off: dict[int, float] = {}
    redis_server.freeze()
    try:
        for n in range(AGENTS):
            started = time.monotonic()
            call_id = await cluster.new_call(n, via=cluster.instances[n % 2])
            handed_off[call_id] = time.monotonic()
            # Two requests, each publishing once after its commit.
            assert handed_off[call_id] - started < PROMPT_S, "a handoff waited on Redis"
        # Meanwhile the poll delivers.
        for agent in agents:
            await agent.stream.wait(offers, within=POLL_S + DEADLINE_S, what="an offer")
    finally:
        redis_server.thaw()

    async with asyncio.TaskGroup() as group:
        workers = [group.create_task(answer_calls(cluster, agent)) for agent in agents]
        for agent in agents:
            await agent.stream.wait(
                lambda events: any(e["type"] == "call.ended" for e in events), what="a wrap"
            )
        # Thawed, Redis carries the wake-ups again.
        for n in range(AGENTS, 3 * AGENTS):
            call_id = await cluster.new_call(n, via=cluster.instances[n % 2])
            handed_off[call_id] = time.monotonic()
        await eventually(
            lambda: sum(len(a.stream.of_type("call.ended")) for a in agents) == 3 * AGENTS,
            what="every call wrapped",
        )
        for worker in workers:
            worker.cancel()

    delays = _delays_by_call(agents, handed_off)
    after = [delays[c] for c in list(handed_off)[AGENTS:]]
    assert max(after) < WAKE_S, after
    check_offers(await cluster.supervisor_replay())
