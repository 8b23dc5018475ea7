"""Screen-pop latency, open loop: handoffs at a steady rate, timed to the agent's `call.offered`.

The clock starts when the handoff request is written and stops when an agent's websocket
receives the offer of that call. Arrivals follow the schedule whatever the server's answers
(open loop), so a slow server shows as latency rather than as a slower arrival rate. Agents
accept at once and wrap after a short hold, so that they come back for later calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from bench.centre import Agent, Centre
from bench.client import load, summary_ms

DRAIN_TIMEOUT_S = 60.0


async def run(
    centre: Centre, *, rate: float, duration_s: float, hold_s: float = 1.0, warmup: int = 5
) -> dict[str, Any]:
    """Latencies of rate*duration_s handoffs; the first `warmup` calls are not counted."""
    count = max(1, round(rate * duration_s))
    sent: dict[int, float] = {}
    latencies: dict[int, float] = {}
    errors: list[str] = []
    tasks: set[asyncio.Task[None]] = set()
    offered_all = asyncio.Event()
    load_before = load()

    async def lifecycle(agent: Agent, call_id: int) -> None:
        try:
            await centre.accept(agent, call_id)
            await asyncio.sleep(hold_s)
            await centre.wrap(agent, call_id)
        except Exception as exc:
            errors.append(f"agent {agent.username} call {call_id}: {exc}")

    def on_offer(agent: Agent, call_id: int, now: float, raw: str) -> None:
        started = sent.get(call_id)
        if started is None or call_id in latencies:
            return
        latencies[call_id] = now - started
        if len(latencies) >= count:
            offered_all.set()
        spawn(lifecycle(agent, call_id))

    def spawn(coro: Any) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def arrive(n: int) -> None:
        http = centre.ivr()
        try:
            call_id = await centre.create_call(http)
            sent[call_id] = time.perf_counter()
            await centre.handoff(http, call_id, n)
        except Exception as exc:
            errors.append(f"call {n}: {exc}")

    centre.on_offer = on_offer
    start = time.perf_counter()
    lag = 0.0
    for n in range(count):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag = max(lag, -delay)
        spawn(arrive(n))
    elapsed = time.perf_counter() - start
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(offered_all.wait(), DRAIN_TIMEOUT_S)
    # Let every agent wrap, so that the next run starts from an idle centre.
    if tasks:
        await asyncio.wait(set(tasks), timeout=DRAIN_TIMEOUT_S + hold_s)
    centre.on_offer = None
    ordered = [latencies[c] for c in sorted(latencies)]
    result: dict[str, Any] = {
        "rate_per_s": rate,
        "offered_rate_per_s": round(count / elapsed, 1) if elapsed > 0 else rate,
        "duration_s": duration_s,
        "agents": len(centre.agents),
        "calls": count,
        "missing": count - len(latencies),
        "errors": len(errors),
        "schedule_lag_max_ms": round(lag * 1000, 1),
        **summary_ms(ordered[warmup:] if len(ordered) > warmup * 2 else ordered),
        "load_before": load_before,
        "load_after": load(),
    }
    if errors:
        result["first_error"] = errors[0]
    return result
