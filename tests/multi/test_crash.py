"""One instance killed with SIGKILL in the middle of a burst of handoffs: the others carry on,
its stranded offer still runs out, and restarted it rejoins."""

from __future__ import annotations

import asyncio
import itertools
import signal
from datetime import UTC, datetime

import pytest

from .cluster import (
    CALLER_PREFIX,
    Cluster,
    EventStream,
    answer_calls,
    check_offers,
    eventually,
    full_replay,
    offers,
    seqs,
)
from .conftest import ClusterFactory

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

TIMEOUT_S = 3.0
CALLS = 30
LINES = 3  # callers in the phone tree at once
KILL_AFTER = 10  # handoffs answered before the kill, at least


async def test_a_killed_instance_loses_no_call(cluster_factory: ClusterFactory) -> None:
    cluster: Cluster = await cluster_factory(3, offer_timeout_s=TIMEOUT_S)
    i0, _, victim = cluster.instances
    # Five agents answer `cards` calls, streaming from i0, i1, the victim, i0, i1; the one on
    # the victim resumes elsewhere when it dies. The only `loans` agent streams from the
    # victim too and never comes back: the offer it holds then must still run out.
    workers = await cluster.add_agents(5)
    wanderer = workers[2]
    (ghost,) = await cluster.add_agents(1, prefix="ghost", skills=["loans"], homes=[victim])
    assert wanderer.home is victim and ghost.home is victim
    await cluster.login("super")
    supervisor = EventStream(i0.ws_url, cluster.tokens["super"])
    await supervisor.connect()
    for n, agent in enumerate([*workers, ghost]):
        await cluster.set_status(agent, "available", via=cluster.instances[(n + 1) % 3])

    handed_off: list[int] = []
    numbers = itertools.count()
    stranded: list[int] = []
    killed_at: list[datetime] = []

    async def line() -> None:
        # Calls made on one instance and handed off on the next of those alive; a request lost
        # with the victim is repeated on another one, as a load balancer would.
        while (n := next(numbers)) < CALLS:
            handed_off.append(await cluster.new_call(n))

    async def kill_mid_burst() -> None:
        await eventually(lambda: len(handed_off) >= KILL_AFTER, within=60, what="handoffs")
        # A `loans` call handed off on the victim: offered there, to the ghost, at once.
        stranded.append(await cluster.new_call(CALLS, via=victim, intent="loans"))
        await ghost.stream.wait(
            lambda events: any(e["data"].get("id") == stranded[0] for e in offers(events)),
            what="the ghost's offer",
        )
        await asyncio.to_thread(victim.kill)
        killed_at.append(datetime.now(UTC))

    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(answer_calls(cluster, agent, reconnect=agent is wanderer))
            for agent in workers
        ]
        killer = group.create_task(kill_mid_burst())
        await asyncio.gather(*(line() for _ in range(LINES)))
        await killer
        assert len(handed_off) == CALLS
        assert victim.proc.returncode == -signal.SIGKILL
        await supervisor.wait(
            lambda events: (
                {e["data"]["id"] for e in events if e["type"] == "call.ended"} >= set(handed_off)
            ),
            within=120,
            what="every handed-off call answered and wrapped",
        )
        # The ghost's offer ran out on an instance still alive; its call is back in the queue.
        await supervisor.wait(
            lambda events: any(
                e["type"] == "call.offer_revoked" and e["data"]["call_id"] == stranded[0]
                for e in events
            ),
            what="the stranded offer to expire",
        )
        for task in tasks:
            task.cancel()

    # The victim restarts on its port and rejoins; the ghost's browser comes back through it,
    # resuming where it stopped, and the agent, available again, takes the stranded call.
    revived = await cluster.restart(victim)
    await ghost.stream.connect(ghost.stream.last_seq, url=revived.ws_url)
    assert [e["data"]["reason"] for e in ghost.stream.of_type("call.offer_revoked")] == ["timeout"]
    await cluster.set_status(ghost, "available", via=revived)
    offer = await ghost.stream.wait(
        lambda events: [e for e in offers(events) if e["data"]["id"] == stranded[0]][1:],
        what="the stranded call offered again",
    )
    r = await cluster.request(
        "POST", f"/api/calls/{stranded[0]}/accept", via=revived, headers=ghost.auth
    )
    assert r.status_code == 200, r.text

    # Every handed-off call was answered in the end; none is stuck half way.
    calls = await cluster.calls()
    assert {calls[c]["state"] for c in handed_off} == {"ended"}
    assert calls[stranded[0]]["state"] == "connected"
    # A call whose creation was lost with the victim may sit in the phone tree; nothing else.
    ours = {i for i, c in calls.items() if c["caller_number"].startswith(CALLER_PREFIX)}
    others = {calls[i]["state"] for i in ours - {*handed_off, *stranded}}
    assert others <= {"ivr"}, others

    replay = await cluster.supervisor_replay()
    counts = check_offers(replay)
    assert counts["call.ended"] == CALLS
    print(f"requests repeated after the kill: {cluster.repeated}")

    # The stranded call: offered to the ghost, revoked once, after the kill, for timeout; then
    # offered to the ghost again, through the restarted instance, and accepted.
    offer, _ = [e for e in offers(replay) if e["data"]["id"] == stranded[0]]
    (revoke,) = [
        e
        for e in replay
        if e["type"] == "call.offer_revoked" and e["data"]["call_id"] == stranded[0]
    ]
    assert offer["data"]["agent_id"] == ghost.id
    assert revoke["data"]["reason"] == "timeout"
    assert datetime.fromisoformat(revoke["at"]) > killed_at[0]

    # Both resumed with last_seq, elsewhere or on the restarted instance: no gap, no repeat.
    assert wanderer.home is not victim
    assert wanderer.stream.of_type("call.ended")
    for agent in (wanderer, ghost):
        own = await full_replay(agent.home.ws_url, agent.token)
        start = agent.stream.start_seq or 0
        assert seqs(agent.stream.events) == [s for s in seqs(own) if s > start], agent.username
    await supervisor.close()
