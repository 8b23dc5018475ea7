"""Throughput, closed loop: whole call lifecycles per second.

Each worker plays one caller after another: create the call, hand it off, and wait until the
agent who got the offer has accepted and wrapped it; then the next. A lifecycle is those four
requests and the offer between them. Lifecycles are counted after a short warm-up.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.centre import Agent, Centre
from bench.client import load, summary_ms

OFFER_TIMEOUT_S = 30.0


async def run(
    centre: Centre, *, workers: int, duration_s: float, warmup_s: float = 1.0
) -> dict[str, Any]:
    waiting: dict[int, asyncio.Future[None]] = {}
    errors: list[str] = []
    tasks: set[asyncio.Task[None]] = set()
    durations: list[float] = []
    counted = 0
    load_before = load()

    async def answer(agent: Agent, call_id: int) -> None:
        future = waiting.pop(call_id, None)
        try:
            await centre.accept(agent, call_id)
            await centre.wrap(agent, call_id)
        except Exception as exc:
            errors.append(f"agent {agent.username} call {call_id}: {exc}")
        if future is not None and not future.done():
            future.set_result(None)

    def on_offer(agent: Agent, call_id: int, now: float, raw: str) -> None:
        task = asyncio.create_task(answer(agent, call_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    start = time.perf_counter()
    measure_from = start + warmup_s
    end = measure_from + duration_s

    async def worker(w: int) -> None:
        nonlocal counted
        n = w
        while time.perf_counter() < end:
            http = centre.ivr()
            began = time.perf_counter()
            try:
                call_id = await centre.create_call(http)
                done = waiting[call_id] = asyncio.get_running_loop().create_future()
                await centre.handoff(http, call_id, n)
                await asyncio.wait_for(done, OFFER_TIMEOUT_S)
            except Exception as exc:
                errors.append(f"worker {w}: {exc!r}")
                await asyncio.sleep(0.1)
                continue
            finished = time.perf_counter()
            if measure_from <= finished <= end:
                counted += 1
                durations.append(finished - began)
            n += workers

    centre.on_offer = on_offer
    await asyncio.gather(*(worker(w) for w in range(workers)))
    if tasks:
        await asyncio.wait(set(tasks), timeout=OFFER_TIMEOUT_S)
    centre.on_offer = None
    result: dict[str, Any] = {
        "workers": workers,
        "agents": len(centre.agents),
        "duration_s": duration_s,
        "lifecycles": counted,
        "lifecycles_per_s": round(counted / duration_s, 1),
        "lifecycle": summary_ms(durations),
        "errors": len(errors),
        "load_before": load_before,
        "load_after": load(),
    }
    if errors:
        result["first_error"] = errors[0]
    return result
