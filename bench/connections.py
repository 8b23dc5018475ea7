"""Connections: resident memory per idle websocket, and the fan-out of one supervisor event.

Opens `count` authenticated supervisor websockets (spread over a few supervisor logins, as
browser tabs would be), reads the server's VmRSS before and after, then times how long one
supervisor event (the `call.created` of a new call) takes to reach every one of them, from
the IVR's request to the last socket's receipt.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from bench.centre import Centre
from bench.client import Socket, gather_limited, load, summary_ms

OPEN_CONCURRENCY = 64
SETTLE_S = 1.0
FANOUT_TIMEOUT_S = 30.0


async def run(
    centre: Centre,
    *,
    count: int,
    compression: bool,
    supervisors: list[str],
    fanouts: int = 10,
) -> dict[str, Any]:
    deployment = centre.deployment
    port = deployment.ports[0]
    load_before = load()
    gc.collect()
    await asyncio.sleep(SETTLE_S)
    rss_before = deployment.rss_kib()

    # Only one call is created while a fan-out is timed: its call.created is the event.
    expect: dict[str, Any] = {"armed": False, "left": 0, "last": 0.0, "done": asyncio.Event()}

    def on_event(_socket: Socket, raw: str, now: float) -> None:
        if expect["armed"] and '"type":"call.created"' in raw:
            expect["left"] -= 1
            expect["last"] = now
            if expect["left"] == 0:
                expect["done"].set()

    sockets = [
        Socket(port, supervisors[i % len(supervisors)], compression=compression, on_event=on_event)
        for i in range(count)
    ]
    try:
        started = time.perf_counter()
        await gather_limited((s.open() for s in sockets), OPEN_CONCURRENCY)
        open_s = time.perf_counter() - started
        await asyncio.sleep(SETTLE_S)
        rss_after = deployment.rss_kib()

        times: list[float] = []
        http = centre.http[0]
        for _ in range(fanouts):
            expect.update(armed=True, left=count, done=asyncio.Event())
            sent = time.perf_counter()
            await centre.create_call(http)
            try:
                await asyncio.wait_for(expect["done"].wait(), FANOUT_TIMEOUT_S)
                times.append(expect["last"] - sent)
            except TimeoutError:
                break
            finally:
                expect["armed"] = False
            await asyncio.sleep(0.2)
    finally:
        await gather_limited((s.close() for s in sockets), OPEN_CONCURRENCY)
    per_kib = (rss_after - rss_before) / count
    return {
        "connections": count,
        "compression": compression,
        "open_s": round(open_s, 2),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "kib_per_connection": round(per_kib, 1),
        "fanout": summary_ms(times),
        "fanouts_timed_out": fanouts - len(times),
        "load_before": load_before,
        "load_after": load(),
    }
