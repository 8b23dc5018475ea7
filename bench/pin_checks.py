"""Call creation's latency alone and while PIN checks run, and PIN checks' while sign-ins run,
on the embedded default.

    python3 -m bench.pin_checks              # 300 creations a phase, 4 workers, 10 verifiers,
                                             # 10 signers in (c)
    python3 -m bench.pin_checks --smoke      # a few, to see that it runs (CI)

`tellonce serve --demo` runs in its own process on a fresh SQLite file in a temp dir, on a free
port of 127.0.0.1; the demo data gives account 12345678 with PIN 1234. Workers, each with its
own httpx client, create calls one after another (`POST /api/calls` with the IVR key), first
alone (a), then (b) while verifiers run PIN checks in a loop, each on a call of its own
(`POST /api/calls` then `POST /api/calls/{id}/verify`, always with the right PIN: three wrong
ones lock the account). This prints the creations' p50, p90 and p99 in both phases, the PIN
checks done during (b) with their median, and the ratio of the two medians. An argon2 check
holding the database's transaction (on SQLite, the one connection) shows as a ratio far above
1. The CPU the checks take from the server's other work, on a small machine, raises it too: to
tell the two apart, it also prints the server's CPU use (cores busy) in each phase and the
median of `GET /healthz`, polled meanwhile, which waits for the event loop but no database.

A third phase (c) runs (b) again while signers sign in in a loop (`POST /api/auth/token` with the
demo agents' right password: a wrong one would soon be throttled and cost no hashing), and prints
the PIN checks' median and p90 in (b) and (c): a flood of sign-ins that starves the phone tree's
PIN checks shows as a (c) far above (b). Sign-ins refused as busy (503) are counted, not retried
sooner.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import httpx

from bench.client import load, summary_ms
from bench.servers import ROOT, Server, cpu_s, free_port

ACCOUNT = {"account_number": "12345678", "pin": "1234"}  # the demo customer's, from --demo
SIGNERS = ("alice", "bob", "carol", "super")  # the demo logins, all with the password "demo"
TIMEOUT_S = 30.0
PROBE_EVERY_S = 0.02


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--creations", type=int, default=300, help="call creations per phase (default 300)"
    )
    parser.add_argument("--workers", type=int, default=4, help="creating workers (default 4)")
    parser.add_argument(
        "--verifiers", type=int, default=10, help="concurrent PIN checks in (b) (default 10)"
    )
    parser.add_argument(
        "--warmup", type=int, default=40, help="creations before (a), not counted (default 40)"
    )
    parser.add_argument(
        "--signers", type=int, default=10, help="concurrent sign-ins in (c) (default 10; 0: no (c))"
    )
    parser.add_argument("--smoke", action="store_true", help="30 creations, 3 verifiers, 3 signers")
    args = parser.parse_args(argv)
    if args.smoke:
        args.creations, args.verifiers, args.warmup, args.signers = 30, 3, 5, 3
    if min(args.creations, args.workers, args.verifiers) < 1 or min(args.warmup, args.signers) < 0:
        parser.error(
            "--creations, --workers and --verifiers must be at least 1, --warmup and --signers >= 0"
        )
    return args


@dataclass
class Phase:
    """What one phase measured, in seconds."""

    creations: list[float] = field(default_factory=list)
    checks: list[tuple[float, float]] = field(default_factory=list)  # (ended at, took)
    probes: list[tuple[float, float]] = field(default_factory=list)  # GET /healthz, the same
    signins: list[tuple[float, float]] = field(default_factory=list)  # sign-ins, the same
    busy: int = 0  # sign-ins refused with 503
    start: float = 0.0
    end: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0  # this process's, the load generator's

    def within(self, timed: list[tuple[float, float]]) -> list[float]:
        """The times of those requests that ended while the creations ran."""
        return [took for ended, took in timed if self.start <= ended <= self.end]

    def cores_busy(self, cpu: float) -> float:
        return round(cpu / (self.end - self.start), 2)


class Ivr:
    """The phone tree's side: numbers never used twice, one httpx client per task."""

    def __init__(self, port: int, key: str) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.headers = {"authorization": f"Bearer {key}"}
        self._numbers = count(1)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=TIMEOUT_S, trust_env=False
        )

    async def create_call(self, http: httpx.AsyncClient) -> tuple[int, float]:
        """A new call in the phone tree: its id and the request's time in seconds."""
        body = {"caller_number": f"+1555{next(self._numbers):07d}"}
        began = time.perf_counter()
        response = await http.post("/api/calls", json=body)
        took = time.perf_counter() - began
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/calls -> {response.status_code}: {response.text[:300]}")
        return int(response.json()["id"]), took

    async def verify(self, http: httpx.AsyncClient, call_id: int) -> float:
        """The right PIN on call_id; the request's time in seconds."""
        path = f"/api/calls/{call_id}/verify"
        began = time.perf_counter()
        response = await http.post(path, json=ACCOUNT)
        took = time.perf_counter() - began
        if response.status_code != 200 or response.json().get("verified") is not True:
            raise RuntimeError(f"POST {path} -> {response.status_code}: {response.text[:300]}")
        return took

    async def sign_in(self, http: httpx.AsyncClient, username: str) -> float | None:
        """A demo login's sign-in: its time in seconds, or None when refused as busy (503)."""
        began = time.perf_counter()
        response = await http.post(
            "/api/auth/token",
            data={"username": username, "password": "demo"},
            headers={"authorization": ""},
        )
        took = time.perf_counter() - began
        if response.status_code == 503:
            return None
        if response.status_code != 200:
            raise RuntimeError(f"POST /api/auth/token -> {response.status_code}: {response.text}")
        return took

    async def probe(self, http: httpx.AsyncClient) -> float:
        """GET /healthz, which touches no database: the event loop's own delay."""
        began = time.perf_counter()
        response = await http.get("/healthz")
        took = time.perf_counter() - began
        if response.status_code != 200:
            raise RuntimeError(f"GET /healthz -> {response.status_code}: {response.text[:300]}")
        return took


async def create_calls(ivr: Ivr, *, total: int, workers: int) -> list[float]:
    """total creations, back to back from each of workers clients: their times."""
    left = count(total, -1)
    times: list[float] = []

    async def worker() -> None:
        async with ivr.client() as http:
            while next(left) > 0:
                times.append((await ivr.create_call(http))[1])

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
    return times


async def measure(
    ivr: Ivr, server: Server, args: argparse.Namespace, *, verifiers: int, signers: int = 0
) -> Phase:
    """One phase: the creations, with that many PIN checks and sign-ins running in a loop
    meanwhile."""
    phase = Phase()
    stop = asyncio.Event()
    warm = asyncio.Event()

    async def verifier() -> None:
        async with ivr.client() as http:
            while not stop.is_set():
                call_id, _ = await ivr.create_call(http)
                took = await ivr.verify(http, call_id)
                phase.checks.append((time.perf_counter(), took))
                if len(phase.checks) >= verifiers:
                    warm.set()

    async def signer(number: int) -> None:
        async with ivr.client() as http:
            while not stop.is_set():
                took = await ivr.sign_in(http, SIGNERS[number % len(SIGNERS)])
                if took is None:
                    phase.busy += 1
                    await asyncio.sleep(1)  # the Retry-After the server gives
                else:
                    phase.signins.append((time.perf_counter(), took))

    async def prober() -> None:
        async with ivr.client() as http:
            while not stop.is_set():
                took = await ivr.probe(http)
                phase.probes.append((time.perf_counter(), took))
                await asyncio.sleep(PROBE_EVERY_S)

    async with asyncio.TaskGroup() as group:
        group.create_task(prober())
        for _ in range(verifiers):
            group.create_task(verifier())
        for number in range(signers):
            group.create_task(signer(number))
        if verifiers:
            # As many checks done as there are verifiers: all of them are running.
            await asyncio.wait_for(warm.wait(), TIMEOUT_S * 2)
        cpu_before, client_before = cpu_s(server.pid), time.process_time()
        phase.start = time.perf_counter()
        phase.creations = await create_calls(ivr, total=args.creations, workers=args.workers)
        phase.end = time.perf_counter()
        phase.server_cpu_s = cpu_s(server.pid) - cpu_before
        phase.client_cpu_s = time.process_time() - client_before
        stop.set()
    return phase


async def run(args: argparse.Namespace, server: Server, ivr_key: str) -> dict[str, Any]:
    ivr = Ivr(server.port, ivr_key)
    # Warm up: connections, the first requests' lazy work, and one argon2 check.
    if args.warmup:
        await create_calls(ivr, total=args.warmup, workers=args.workers)
    async with ivr.client() as http:
        call_id, _ = await ivr.create_call(http)
        await ivr.verify(http, call_id)
    load_before = load()
    alone = await measure(ivr, server, args, verifiers=0)
    checked = await measure(ivr, server, args, verifiers=args.verifiers)
    flooded = (
        await measure(ivr, server, args, verifiers=args.verifiers, signers=args.signers)
        if args.signers
        else None
    )
    a, b = summary_ms(alone.creations), summary_ms(checked.creations)
    checks = checked.within(checked.checks)
    signed: dict[str, Any] | None = None
    if flooded is not None:
        flooded_checks, signins = flooded.within(flooded.checks), flooded.within(flooded.signins)
        signed = {
            "creations": summary_ms(flooded.creations),
            "checks": len(flooded_checks),
            "check": summary_ms(flooded_checks) if flooded_checks else None,
            "signins": len(signins),
            "signin": summary_ms(signins) if signins else None,
            "busy": flooded.busy,
            "healthz_p50_ms": summary_ms(flooded.within(flooded.probes))["p50_ms"],
            "server_cores": flooded.cores_busy(flooded.server_cpu_s),
            "wall_s": round(flooded.end - flooded.start, 2),
        }
    return {
        "alone": a,
        "with_checks": b,
        "checks": len(checks),
        "check_p50_ms": summary_ms(checks)["p50_ms"] if checks else None,
        "check_p90_ms": summary_ms(checks)["p90_ms"] if checks else None,
        "with_signins": signed,
        "healthz_p50_ms": [summary_ms(p.within(p.probes))["p50_ms"] for p in (alone, checked)],
        "ratio_p50": round(b["p50_ms"] / a["p50_ms"], 2),
        "server_cores": [p.cores_busy(p.server_cpu_s) for p in (alone, checked)],
        "client_cores": [p.cores_busy(p.client_cpu_s) for p in (alone, checked)],
        "cores": os.cpu_count(),
        "wall_s": [round(p.end - p.start, 2) for p in (alone, checked)],
        "load": [load_before, load()],
    }


def start_server(workdir: Path, ivr_key: str) -> Server:
    """`tellonce serve --demo` on a fresh SQLite file in workdir, ready to serve."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TELLONCE_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'tellonce.db'}"
    env["TELLONCE_SECRET_KEY"] = secrets.token_urlsafe(32)
    env["TELLONCE_IVR_API_KEY"] = ivr_key
    port = free_port()
    log = workdir / "server.log"
    # python -m app.cli rather than the console script: the pid is then the server itself.
    args = [sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(port)]
    args += ["--log-level", "warning"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            args,
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(port, process, log)
    try:
        server.wait_ready("/readyz")
    except BaseException:
        server.stop()
        raise
    return server


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tellonce-pin-checks-"))
    ivr_key = secrets.token_urlsafe(32)
    server: Server | None = None
    try:
        server = start_server(workdir, ivr_key)
        try:
            result = asyncio.run(run(args, server, ivr_key))
        except Exception:
            tail = server.tail()
            if tail:
                print(f"server log ({server.log.name}, last lines):\n{tail}", file=sys.stderr)
            raise
    finally:
        if server is not None:
            server.stop()  # terminate, then kill if it is still there after 15 s
        shutil.rmtree(workdir, ignore_errors=True)
    a, b = result["alone"], result["with_checks"]
    wall, healthz = result["wall_s"], result["healthz_p50_ms"]
    on_server, on_client = result["server_cores"], result["client_cores"]
    print(
        f"embedded, POST /api/calls from {args.workers} workers, {args.creations} per phase "
        f"(load {result['load'][0]} -> {result['load'][1]}):\n"
        f"  (a) alone:              p50 {a['p50_ms']} ms, p90 {a['p90_ms']}, p99 {a['p99_ms']}\n"
        f"  (b) with {args.verifiers:>2} PIN checks:  p50 {b['p50_ms']} ms, p90 {b['p90_ms']}, "
        f"p99 {b['p99_ms']}\n"
        f"  PIN checks during (b): {result['checks']}, verify p50 {result['check_p50_ms']} ms\n"
        f"  (b)/(a) p50: {result['ratio_p50']}\n"
        f"  meanwhile, (a) then (b): {wall[0]} and {wall[1]} s; of {result['cores']} cores, "
        f"the server used {on_server[0]} and {on_server[1]}, this client {on_client[0]} and "
        f"{on_client[1]}; GET /healthz p50 {healthz[0]} and {healthz[1]} ms"
    )
    signed = result["with_signins"]
    if signed is not None:
        c, check, signin = signed["creations"], signed["check"] or {}, signed["signin"] or {}
        print(
            f"  (c) (b) with {args.signers:>2} signers: creations p50 {c['p50_ms']} ms, "
            f"p99 {c['p99_ms']}\n"
            f"  PIN checks: (b) {result['checks']}, p50 {result['check_p50_ms']} ms, "
            f"p90 {result['check_p90_ms']}; (c) {signed['checks']}, p50 {check.get('p50_ms')} ms, "
            f"p90 {check.get('p90_ms')}\n"
            f"  sign-ins during (c): {signed['signins']}, p50 {signin.get('p50_ms')} ms, "
            f"p90 {signin.get('p90_ms')}; refused as busy: {signed['busy']}; "
            f"{signed['wall_s']} s, server {signed['server_cores']} cores, "
            f"GET /healthz p50 {signed['healthz_p50_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
