"""HTTP limits under abuse: a fresh `tellonce serve` with its default limits is flooded, as an
attacker with no credential would, while a prober asks /healthz on a new connection every
0.1 s. Prints what was tried and what survived, as JSON (docs/RELIABILITY.md).

    python -m bench.http_limits [--idle 25000] [--slow 2000] [--bodies 4] [--headers 4]

Phases, one after the other: `idle` connections that never send a byte (more than the server's
connection limit, from several processes, as one process may not hold them all); `slow` ones
that send a request's headers a byte a second (slowloris); `bodies` of 100 MB streamed at once
without a token; `headers` of 10 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import resource
import time
from pathlib import Path
from typing import Any

import httpx

from bench.servers import start_tellonce

HEALTH_EVERY_S = 0.1
HEALTH_TIMEOUT_S = 2.0
OPEN_CONCURRENCY = 500
MiB = 1024 * 1024


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def reset_peak(pid: int) -> int:
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return peak_kib(pid)


class Prober:
    """/healthz on a new connection every HEALTH_EVERY_S, as a load balancer would."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/healthz"
        self.results: list[tuple[str, float]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=HEALTH_TIMEOUT_S) as client:
            while True:
                started = time.monotonic()
                try:
                    outcome = str((await client.get(self.url)).status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                self.results.append((outcome, time.monotonic() - started))
                await asyncio.sleep(max(0.0, HEALTH_EVERY_S - (time.monotonic() - started)))

    def start(self) -> None:
        self.results = []
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, Any]:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        outcomes: dict[str, int] = {}
        for outcome, _ in self.results:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        slowest = max((s for _, s in self.results), default=0.0)
        return {"probes": len(self.results), "outcomes": outcomes, "slowest_s": round(slowest, 3)}


async def _hold_idle(port: int, count: int, wait_s: float) -> dict[str, Any]:
    """Open count connections that never send; how many opened, and when the server closed
    each (seconds after all were open)."""
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    opened: list[asyncio.StreamReader] = []
    writers: list[asyncio.StreamWriter] = []
    failed = 0

    async def open_one() -> None:
        nonlocal failed
        async with gate:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                failed += 1
                return
            opened.append(reader)
            writers.append(writer)

    await asyncio.gather(*(open_one() for _ in range(count)))
    start = time.monotonic()

    async def closed(reader: asyncio.StreamReader) -> float | None:
        try:
            got = await asyncio.wait_for(reader.read(), wait_s)
        except TimeoutError:
            return None
        except OSError:
            got = b""
        return time.monotonic() - start if got == b"" else -1.0

    times = await asyncio.gather(*(closed(r) for r in opened))
    for writer in writers:
        writer.close()
    return {
        "opened": len(opened),
        "failed_to_open": failed,
        "closed_silently": sum(1 for t in times if t is not None and t >= 0),
        "answered": sum(1 for t in times if t == -1.0),
        "still_open": sum(1 for t in times if t is None),
        "last_closed_s": round(max((t for t in times if t is not None), default=0.0), 2),
    }


def _idle_worker(port: int, count: int, wait_s: float, out: Any) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out.put(asyncio.run(_hold_idle(port, count, wait_s)))


async def idle_flood(port: int, total: int, wait_s: float) -> dict[str, Any]:
    per_worker = 8000
    queue: Any = multiprocessing.Queue()
    workers = []
    for start in range(0, total, per_worker):
        n = min(per_worker, total - start)
        process = multiprocessing.Process(target=_idle_worker, args=(port, n, wait_s, queue))
        process.start()
        workers.append(process)
    parts = [await asyncio.to_thread(queue.get) for _ in workers]
    for process in workers:
        process.join()
    merged: dict[str, Any] = {"connections": total}
    for key in ("opened", "failed_to_open", "closed_silently", "answered", "still_open"):
        merged[key] = sum(p[key] for p in parts)
    merged["last_closed_s"] = max(p["last_closed_s"] for p in parts)
    return merged


async def slowloris(port: int, count: int, wait_s: float) -> dict[str, Any]:
    """count connections sending a request's headers one byte a second."""
    statuses: dict[str, int] = {}
    durations: list[float] = []
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")

        async def drip() -> None:
            while True:
                await asyncio.sleep(1.0)
                writer.write(b"a")
                await writer.drain()

        dripping = asyncio.create_task(drip())
        try:
            answer = await asyncio.wait_for(reader.read(), wait_s)
            status = answer.split(b" ", 2)[1].decode() if answer else "closed"
        except TimeoutError:
            status = "still open"
        except OSError:
            status = "reset"
        finally:
            dripping.cancel()
            writer.close()
        statuses[status] = statuses.get(status, 0) + 1
        durations.append(time.monotonic() - start)

    await asyncio.gather(*(one() for _ in range(count)))
    return {
        "connections": count,
        "outcomes": statuses,
        "longest_held_s": round(max(durations, default=0.0), 2),
    }


async def big_bodies(port: int, count: int) -> dict[str, Any]:
    """count bodies of 100 MB each, streamed at once, without a token."""

    async def body() -> Any:
        chunk = b"x" * (64 * 1024)
        for _ in range(1600):
            yield chunk

    async def one(client: httpx.AsyncClient) -> str:
        try:
            response = await client.post(
                f"http://127.0.0.1:{port}/api/calls",
                content=body(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return str(response.status_code)

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60) as client:
        outcomes = await asyncio.gather(*(one(client) for _ in range(count)))
    return {
        "bodies": count,
        "bytes_each": 100 * MiB,
        "outcomes": {o: outcomes.count(o) for o in set(outcomes)},
        "seconds": round(time.monotonic() - started, 2),
    }


async def big_headers(port: int, count: int) -> dict[str, Any]:
    """count requests whose headers go on for 10 MB."""

    async def one() -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ")
            for _ in range(160):  # 10 MB, 64 KiB at a time
                writer.write(b"a" * (64 * 1024))
                await writer.drain()
        except OSError:
            pass
        try:
            answer = await asyncio.wait_for(reader.read(), 30)
        except OSError:
            return "reset"
        finally:
            writer.close()
        return answer.split(b" ", 2)[1].decode() if answer else "closed"

    outcomes = await asyncio.gather(*(one() for _ in range(count)))
    return {
        "requests": count,
        "header_bytes_each": 10 * MiB,
        "outcomes": {o: outcomes.count(o) for o in set(outcomes)},
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    deployment = start_tellonce("limits")
    server = deployment.servers[0]
    port, pid = server.port, server.pid
    prober = Prober(port)
    report: dict[str, Any] = {"server_rss_mib_at_start": round(server.rss_kib() / 1024, 1)}
    try:
        for name, phase in (
            ("idle", lambda: idle_flood(port, args.idle, args.wait)),
            ("slow", lambda: slowloris(port, args.slow, args.wait)),
            ("bodies", lambda: big_bodies(port, args.bodies)),
            ("headers", lambda: big_headers(port, args.headers)),
        ):
            if getattr(args, name) == 0:
                continue
            before = reset_peak(pid)
            prober.start()
            result = await phase()
            result["healthz"] = await prober.stop()
            result["server_peak_growth_mib"] = round((peak_kib(pid) - before) / 1024, 1)
            report[name] = result
            print(name, json.dumps(result), flush=True)
        report["server_alive"] = server.process.poll() is None
        report["server_rss_mib_at_end"] = round(server.rss_kib() / 1024, 1)
        report["server_log_tail"] = server.tail(5)
    finally:
        deployment.stop()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=25_000)
    parser.add_argument("--slow", type=int, default=2_000)
    parser.add_argument("--bodies", type=int, default=4)
    parser.add_argument("--headers", type=int, default=4)
    parser.add_argument("--wait", type=float, default=40.0, help="longest wait for a close")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
