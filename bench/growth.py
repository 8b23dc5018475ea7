"""How a lifecycle's cost grows: with idle sockets, with callers, with calls left waiting.

    python3 -m bench.growth                 # every scenario, embedded default
    python3 -m bench.growth --smoke         # tiny, to see that it runs (CI)
    python3 -m bench.growth --only waiting --waiting 200,1000

Each scenario runs on a fresh embedded server (SQLite, one process): agents are connected and
available, then callers place calls back to back (the closed loop of bench/throughput.py) for
a few seconds. For each it prints lifecycles per second and the server's CPU per lifecycle,
which is the figure to compare: the load generator shares the machine, so lifecycles per second
also move with it, while the server's CPU per lifecycle says what each call costs it.

- `base`: the agents and 32 callers, nothing else.
- `idle`: the same, with idle agent websockets open besides (agents signed in and offline,
  five tabs each, the most the server keeps per person by default: browsers left open).
- `callers`: more callers at once than agents, so that calls queue between offers.
- `waiting`: the same 32 callers while calls wait in the escalations queue, which no connected
  agent has the skill for (a queue left without staff: its callers wait, and every other
  queue's calls must be routed past them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from bench import throughput
from bench.centre import SKILLS, Centre
from bench.client import Socket, gather_limited
from bench.servers import start_tellonce

SCENARIOS = ("base", "idle", "callers", "waiting")
# The agents of every scenario answer these queues, not escalations.
ANSWERED = [s for s in SKILLS if s != "escalations"]
OPEN_CONCURRENCY = 64


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(SCENARIOS), help="scenarios, comma-separated")
    p.add_argument("--agents", type=int, default=100, help="agents available (default 100)")
    p.add_argument("--callers", type=int, default=32, help="callers of base (default 32)")
    p.add_argument("--many", type=int, default=200, help="callers of `callers` (default 200)")
    p.add_argument("--idle", type=int, default=2000, help="idle sockets of `idle` (default 2000)")
    p.add_argument(
        "--waiting", default="500", help="calls left waiting, comma-separated (default 500)"
    )
    p.add_argument("--duration", type=float, default=8.0, help="closed-loop seconds (default 8)")
    p.add_argument("--runs", type=int, default=3, help="rounds, interleaved (default 3)")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--smoke", action="store_true", help="tiny and fast: exercise every scenario")
    args = p.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.waiting = [int(n) for n in args.waiting.split(",") if n]
    if args.smoke:
        args.agents, args.callers, args.many, args.idle = 4, 2, 8, 20
        args.waiting, args.duration, args.runs = [10], 1.0, 1
    return args


async def open_idle(centre: Centre, count: int) -> list[Socket]:
    """count agent websockets of offline agents, five per agent (TELLONCE_WS_PER_USER)."""
    per_agent = 5
    logins = max(1, -(-count // per_agent))
    start = len(centre.agents)
    await centre.add_agents(logins, prefix="idle", available=False)
    idle_agents, centre.agents = centre.agents[start:], centre.agents[:start]
    port = centre.deployment.ports[0]
    sockets = [
        Socket(port, idle_agents[i // per_agent].token, idle_agents[i // per_agent].user_id)
        for i in range(count)
    ]
    await gather_limited((s.open() for s in sockets), OPEN_CONCURRENCY)
    for agent in idle_agents:
        await agent.socket.close()
    return sockets


async def leave_waiting(centre: Centre, count: int) -> None:
    """count calls handed off to escalations, which no agent of the scenario answers."""
    http = centre.http[0]

    async def one(_: int) -> None:
        call_id = await centre.create_call(http)
        body = {"intent": "other", "collected": {}, "escalate_reason": "unstaffed"}
        await http.request("POST", f"/api/calls/{call_id}/handoff", body=body, token=centre.ivr_key)

    await gather_limited((one(i) for i in range(count)), 8)


async def scenario(name: str, args: argparse.Namespace, *, waiting: int = 0) -> dict[str, Any]:
    deployment = await asyncio.to_thread(start_tellonce, "embedded")
    centre = Centre(deployment)
    idle: list[Socket] = []
    try:
        await centre.start()
        callers = args.many if name == "callers" else args.callers
        await centre.add_agents(args.agents, skills=ANSWERED)
        if name == "idle":
            idle = await open_idle(centre, args.idle)
        if name == "waiting":
            await leave_waiting(centre, waiting)
        await asyncio.sleep(1.0)
        cpu, began = deployment.cpu_s(), time.perf_counter()
        result = await throughput.run(centre, workers=callers, duration_s=args.duration)
        busy = (deployment.cpu_s() - cpu) / (time.perf_counter() - began)
        rate = result["lifecycles_per_s"]
        return {
            "scenario": name,
            "agents": args.agents,
            "callers": callers,
            "idle_sockets": len(idle),
            "waiting": waiting,
            "lifecycles_per_s": result["lifecycles_per_s"],
            "errors": result["errors"],
            "server_cpu_ms_per_lifecycle": round(1000 * busy / rate, 2) if rate else None,
            "rss_mib": round(deployment.rss_kib() / 1024, 1),
        }
    finally:
        await gather_limited((s.close() for s in idle), OPEN_CONCURRENCY)
        await centre.close()
        await asyncio.to_thread(deployment.stop)


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every scenario once per round, rounds interleaved; each scenario's figures are its
    rounds' medians (this machine's speed swings by a quarter from one minute to the next)."""
    plan = [(name, w) for name in args.only for w in (args.waiting if name == "waiting" else [0])]
    rounds: dict[tuple[str, int], list[dict[str, Any]]] = {key: [] for key in plan}
    for r in range(args.runs):
        for name, waiting in plan:
            row = await scenario(name, args, waiting=waiting)
            rounds[name, waiting].append(row)
            print(f"  round {r + 1}: {line(row)}", flush=True)
    out = []
    for key in plan:
        rows = rounds[key]
        row = dict(rows[0])
        for figure in ("lifecycles_per_s", "server_cpu_ms_per_lifecycle", "rss_mib"):
            values = [x[figure] for x in rows if x[figure] is not None]
            row[figure] = round(statistics.median(values), 2) if values else None
        row["errors"] = sum(x["errors"] for x in rows)
        row["runs"] = len(rows)
        out.append(row)
    print(f"medians of {args.runs} round(s):")
    for row in out:
        print(f"  {line(row)}")
    return out


def line(row: dict[str, Any]) -> str:
    return (
        f"{row['scenario']:8} agents {row['agents']:4} callers {row['callers']:4} "
        f"idle sockets {row['idle_sockets']:5} waiting {row['waiting']:5}: "
        f"{row['lifecycles_per_s']:7.1f} lifecycles/s, "
        f"{row['server_cpu_ms_per_lifecycle']} ms server CPU each, "
        f"RSS {row['rss_mib']} MiB, errors {row['errors']}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = asyncio.run(main_async(args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
