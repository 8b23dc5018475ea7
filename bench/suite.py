"""Run every benchmark against the floor, the embedded default and PostgreSQL + Redis.

    bash bench/run-all                  # the full run: docs/bench/results.json and latency.png
    bash bench/run-all --smoke          # a tiny run of every script (CI): figures, no assertions
    bash bench/run-all --targets embedded,floor --rates 50 --duration 10

Every server runs in its own process, started fresh; this process is the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import connections, screenpop, throughput
from bench.centre import Centre
from bench.client import load
from bench.servers import ROOT, Deployment, postgres_available, start_floor, start_tellonce

TARGETS = ("embedded", "floor", "postgres")
LABELS = {
    "floor": "floor (FastAPI+uvicorn, no DB)",
    "embedded": "embedded (SQLite, 1 instance)",
    "postgres": "PostgreSQL + Redis, 2 instances",
}
DEFAULT_EVENT_BYTES = 1400
REFERENCE_RATE = 50.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny and fast: exercise every script")
    p.add_argument(
        "--targets", default=",".join(TARGETS), help="comma-separated: " + ",".join(TARGETS)
    )
    p.add_argument("--agents", type=int, help="agents connected (default 500; smoke 6)")
    p.add_argument(
        "--rates", help="handoffs per second, comma-separated (default 5,10,20,30,40,50)"
    )
    p.add_argument("--duration", type=float, help="seconds per arrival rate (default 15)")
    p.add_argument("--hold", type=float, help="seconds an agent holds a call (default 1)")
    p.add_argument("--workers", type=int, help="closed-loop callers (default 32)")
    p.add_argument("--tp-duration", type=float, help="closed-loop seconds (default 10)")
    p.add_argument("--connections", type=int, help="idle websockets (default 2000)")
    p.add_argument("--out", type=Path, help="where results.json and latency.png go")
    p.add_argument(
        "--event-bytes",
        type=int,
        help="size of the floor's events (default: the median call.offered of this run, else "
        f"{DEFAULT_EVENT_BYTES})",
    )
    p.add_argument(
        "--from-json",
        type=Path,
        action="append",
        help="measure nothing: table and plot of earlier results.json files, their targets merged "
        "(a later file's target replaces an earlier one's)",
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="TELLONCE_NAME=VALUE",
        help="a setting of the Tellonce servers (repeatable), e.g. TELLONCE_REPORT_ROLLUP_S=3600",
    )
    p.add_argument(
        "--wait-load",
        type=float,
        default=None,
        help="before each measurement, wait (up to 4 min) "
        "until the 1-minute load average is below this",
    )
    args = p.parse_args(argv)
    full = not args.smoke
    defaults: dict[str, Any] = {
        "agents": 500 if full else 6,
        "rates": "5,10,20,30,40,50" if full else "5",
        "duration": 15.0 if full else 1.0,
        "hold": 1.0 if full else 0.1,
        "workers": 32 if full else 3,
        "tp_duration": 10.0 if full else 1.0,
        "connections": 2000 if full else 20,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.rates = [float(r) for r in str(args.rates).split(",") if r]
    args.targets = [t for t in args.targets.split(",") if t]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        p.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if args.out is None:
        args.out = (
            ROOT / "docs" / "bench" if full else Path(f"/tmp/tellonce-bench-smoke-{os.getpid()}")
        )
    return args


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit,
    }


async def wait_for_load(limit: float | None) -> None:
    if limit is None:
        return
    deadline = time.monotonic() + 240
    while load() >= limit and time.monotonic() < deadline:
        print(f"  waiting for load < {limit} (now {load()})", flush=True)
        await asyncio.sleep(15)


async def deploy(
    target: str,
    event_bytes: int,
    *,
    compression: bool = False,
    settings: dict[str, str] | None = None,
) -> Deployment:
    """compression: Tellonce then accepts permessage-deflate (off by default); the floor always
    accepts what the client offers, as uvicorn does unless told otherwise. settings: more of
    Tellonce's environment (--setting)."""
    if target == "floor":
        return await asyncio.to_thread(start_floor, event_bytes=event_bytes)
    env = {
        "TELLONCE_WS_PER_MESSAGE_DEFLATE": "true" if compression else "false",
        # The connections benchmark opens its thousands of sockets with a few logins, as no
        # centre does: each agent has a login of their own, and the cap is per login.
        "TELLONCE_WS_PER_USER": "100000",
        **(settings or {}),
    }
    if target == "embedded":
        return await asyncio.to_thread(start_tellonce, "embedded", extra_env=env)
    return await asyncio.to_thread(
        start_tellonce, "postgres", postgres=True, instances=2, extra_env=env
    )


@contextlib.asynccontextmanager
async def deployed(
    target: str, args: argparse.Namespace, event_bytes: int, *, compression: bool = False
) -> AsyncIterator[tuple[Deployment, Centre]]:
    """A fresh deployment once the load allows, and a started client; the servers' logs are
    printed if anything fails, and everything is stopped on the way out."""
    await wait_for_load(args.wait_load)
    settings = dict(item.split("=", 1) for item in args.setting)
    deployment = await deploy(target, event_bytes, compression=compression, settings=settings)
    centre = Centre(deployment)
    try:
        await centre.start()
        yield deployment, centre
    except BaseException:
        for server in deployment.servers:
            print(f"--- {server.log}\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        await centre.close()
        await asyncio.to_thread(deployment.stop)


async def measure(target: str, args: argparse.Namespace, event_bytes: int) -> dict[str, Any]:
    print(f"== {LABELS[target]}", flush=True)
    async with deployed(target, args, event_bytes) as (deployment, centre):
        out: dict[str, Any] = {
            "label": LABELS[target],
            "instances": len(deployment.servers),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_at_start": load(),
        }
        began = time.perf_counter()
        await centre.add_agents(args.agents)
        print(
            f"  {args.agents} agents connected in {time.perf_counter() - began:.1f} s", flush=True
        )
        out["rss_with_agents_kib"] = deployment.rss_kib()
        out["screen_pop"] = []
        for rate in args.rates:
            cpu = deployment.cpu_s()
            result = await screenpop.run(
                centre, rate=rate, duration_s=args.duration, hold_s=args.hold
            )
            result["server_cpu_ms_per_call"] = round(
                1000 * (deployment.cpu_s() - cpu) / result["calls"], 1
            )
            out["screen_pop"].append(result)
            print(
                f"  screen pop @{rate:g}/s: p50 {result['p50_ms']} p90 {result['p90_ms']} "
                f"p99 {result['p99_ms']} max {result['max_ms']} ms "
                f"(n {result['n']}, missing {result['missing']}, errors {result['errors']}, "
                f"{result['server_cpu_ms_per_call']} ms server CPU per call, "
                f"load {result['load_before']})",
                flush=True,
            )
        if centre.offer_bytes:
            out["offer_event_bytes"] = int(statistics.median(centre.offer_bytes))
        cpu, began = deployment.cpu_s(), time.perf_counter()
        result = await throughput.run(centre, workers=args.workers, duration_s=args.tp_duration)
        busy = (deployment.cpu_s() - cpu) / (time.perf_counter() - began)
        result["server_cpu_cores_busy"] = round(busy, 2)
        out["throughput"] = result
        print(
            f"  throughput: {result['lifecycles_per_s']} lifecycles/s "
            f"({result['workers']} callers, errors {result['errors']}, server "
            f"{busy:.2f} cores busy, load {result['load_before']})",
            flush=True,
        )
    if target != "postgres":
        out["connections"] = [
            await measure_connections(target, args, event_bytes, compression=compression)
            for compression in (False, True)
        ]
    return out


async def measure_connections(
    target: str, args: argparse.Namespace, event_bytes: int, *, compression: bool
) -> dict[str, Any]:
    """On a fresh server each time, so that one measurement's freed memory is not the next's."""
    async with deployed(target, args, event_bytes, compression=compression) as (_, centre):
        supervisors = await centre.supervisor_tokens(2 if args.smoke else 20)
        result = await connections.run(
            centre,
            count=args.connections,
            compression=compression,
            supervisors=supervisors,
            fanouts=2 if args.smoke else 10,
        )
    print(
        f"  {result['connections']} idle websockets, compression "
        f"{'on' if compression else 'off'}: {result['kib_per_connection']} KiB each; "
        f"fan-out p50 {result['fanout']['p50_ms']} max {result['fanout']['max_ms']} "
        f"ms (load {result['load_before']})",
        flush=True,
    )
    return result


def at_rate(results: list[dict[str, Any]], rate: float) -> dict[str, Any] | None:
    if not results:
        return None
    return min(results, key=lambda r: abs(r["rate_per_s"] - rate))


def summarise(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline figures, each with its ratio to the floor, its target and whether it is met."""
    targets = report["targets"]
    rate = min(report["config"]["rates"], key=lambda r: abs(r - REFERENCE_RATE))
    agents = report["config"]["agents"]

    def pop(name: str, key: str) -> float | None:
        found = at_rate(targets.get(name, {}).get("screen_pop", []), rate)
        return None if found is None else found[key]

    def conn(name: str, compression: bool, key: str) -> float | None:
        for c in targets.get(name, {}).get("connections", []):
            if c["compression"] == compression:
                if key.startswith("fanout_"):
                    return float(c["fanout"][key.removeprefix("fanout_")])
                return float(c[key])
        return None

    def tp(name: str) -> float | None:
        found = targets.get(name, {}).get("throughput")
        return None if found is None else found["lifecycles_per_s"]

    n_conn = report["config"]["connections"]
    rows: list[dict[str, Any]] = []

    def row(
        figure: str, unit: str, get: Any, target: str = "", check: Any = None, higher: bool = False
    ) -> None:
        values = {t: get(t) for t in TARGETS}
        floor = values.get("floor")
        ratios = {
            t: (round(v / floor, 2) if v is not None and floor else None)
            for t, v in values.items()
            if t != "floor"
        }
        met = None if check is None else check(values, ratios)
        rows.append(
            {
                "figure": figure,
                "unit": unit,
                "values": values,
                "ratio_to_floor": ratios,
                "target": target,
                "met": met,
            }
        )

    def le(t: str, limit: float, ratio: bool = False) -> Any:
        def check(values: dict[str, Any], ratios: dict[str, Any]) -> bool | None:
            v = (ratios if ratio else values).get(t)
            return None if v is None else v <= limit

        return check

    def ge(t: str, limit: float) -> Any:
        def check(values: dict[str, Any], ratios: dict[str, Any]) -> bool | None:
            v = values.get(t)
            return None if v is None else v >= limit

        return check

    where = f"@{rate:g}/s, {agents} agents"
    row(
        f"screen pop p50 {where}",
        "ms",
        lambda t: pop(t, "p50_ms"),
        "embedded <= 4x floor",
        le("embedded", 4.0, ratio=True),
    )
    row(f"screen pop p90 {where}", "ms", lambda t: pop(t, "p90_ms"))
    row(
        f"screen pop p99 {where}",
        "ms",
        lambda t: pop(t, "p99_ms"),
        "embedded < 10 ms",
        le("embedded", 10.0),
    )
    row(
        f"screen pop p99 {where} (2 instances)",
        "ms",
        lambda t: pop(t, "p99_ms") if t == "postgres" else None,
        "PostgreSQL+Redis < 25 ms",
        le("postgres", 25.0),
    )
    row(f"screen pop max {where}", "ms", lambda t: pop(t, "max_ms"))
    row(
        "whole lifecycles per second (closed loop)",
        "1/s",
        tp,
        "embedded >= 300",
        ge("embedded", 300.0),
        higher=True,
    )
    row(
        "whole lifecycles per second (closed loop, 2 instances)",
        "1/s",
        lambda t: tp(t) if t == "postgres" else None,
        "PostgreSQL+Redis >= 150",
        ge("postgres", 150.0),
        higher=True,
    )
    row(
        f"RSS per idle websocket, {n_conn} open, no compression",
        "KiB",
        lambda t: conn(t, False, "kib_per_connection"),
        "<= 40 KiB",
        le("embedded", 40.0),
    )
    row(
        f"RSS per idle websocket, {n_conn} open, permessage-deflate",
        "KiB",
        lambda t: conn(t, True, "kib_per_connection"),
    )
    row(
        f"fan-out of one event to {n_conn} supervisors, p50",
        "ms",
        lambda t: conn(t, False, "fanout_p50_ms"),
    )
    row(
        f"fan-out of one event to {n_conn} supervisors, max",
        "ms",
        lambda t: conn(t, False, "fanout_max_ms"),
    )
    row(
        f"fan-out to {n_conn} supervisors with deflate, p50",
        "ms",
        lambda t: conn(t, True, "fanout_p50_ms"),
    )
    return rows


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    head = ["figure", "floor", "embedded", "x floor", "pg+redis x2", "x floor", "target", "met"]
    lines = [head]
    for r in rows:
        v, q = r["values"], r["ratio_to_floor"]
        met = {None: "", True: "yes", False: "NO"}[r["met"]]
        lines.append(
            [
                f"{r['figure']} ({r['unit']})",
                fmt(v.get("floor")),
                fmt(v.get("embedded")),
                fmt(q.get("embedded")),
                fmt(v.get("postgres")),
                fmt(q.get("postgres")),
                r["target"],
                met,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines
    )


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colours = {"floor": "#888888", "embedded": "#1f77b4", "postgres": "#d62728"}
    for name, data in report["targets"].items():
        points = sorted(data.get("screen_pop", []), key=lambda r: r["rate_per_s"])
        if not points:
            continue
        rates = [p["rate_per_s"] for p in points]
        colour = colours.get(name)
        ax.plot(rates, [p["p50_ms"] for p in points], "o-", color=colour, label=f"{name} p50")
        ax.plot(rates, [p["p99_ms"] for p in points], "s--", color=colour, label=f"{name} p99")
    ax.set_yscale("log")
    ax.set_xlabel("handoffs per second (open loop)")
    ax.set_ylabel("screen-pop latency, ms (log)")
    agents = report["config"]["agents"]
    ax.set_title(f"Screen pop: handoff sent -> call.offered received, {agents} agents")
    ax.axhline(10, color="#1f77b4", linewidth=0.8, linestyle=":", label="target p99, embedded")
    ax.axhline(25, color="#d62728", linewidth=0.8, linestyle=":", label="target p99, PostgreSQL")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "machine": machine(),
        "config": {
            "agents": args.agents,
            "rates": args.rates,
            "duration_s": args.duration,
            "hold_s": args.hold,
            "workers": args.workers,
            "throughput_duration_s": args.tp_duration,
            "connections": args.connections,
        },
        "load_at_start": load(),
        "targets": {},
    }
    event_bytes = args.event_bytes or DEFAULT_EVENT_BYTES
    order = [t for t in TARGETS if t in args.targets]
    for target in order:
        if target == "postgres" and not postgres_available():
            print("== PostgreSQL or Redis not on 127.0.0.1: skipped", flush=True)
            continue
        result = await measure(target, args, event_bytes)
        report["targets"][target] = result
        # The floor pushes events as large as the real offers measured in this run.
        if args.event_bytes is None:
            event_bytes = result.get("offer_event_bytes", event_bytes)
        report["config"]["floor_event_bytes"] = event_bytes
    report["load_at_end"] = load()
    report["summary"] = summarise(report)
    return report


def _stop(signum: int, frame: Any) -> None:
    # Unwind like Ctrl-C, so that every server this run started is stopped on the way out.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.connections * 2 + args.agents * 2 + 1024))
    # Raised here, so that the servers (children) inherit it too.
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    started = time.perf_counter()
    if args.from_json:
        reports = [json.loads(path.read_text()) for path in args.from_json]
        report = reports[0]
        for other in reports[1:]:
            report["targets"].update(other["targets"])
            report["config"].update(
                {k: v for k, v in other["config"].items() if k == "floor_event_bytes"}
            )
        report["merged_from"] = [str(path) for path in args.from_json]
        report["summary"] = summarise(report)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
        plot(report, args.out / "latency.png")
        print(table(report["summary"]))
        return 0
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        report = runner.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out / "latency.png")
    print()
    print(table(report["summary"]))
    print(
        f"\nload {report['load_at_start']} -> {report['load_at_end']}; "
        f"wrote {args.out / 'results.json'} and {args.out / 'latency.png'} "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
