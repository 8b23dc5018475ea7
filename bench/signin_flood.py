"""Sign-in floods against a live server on the embedded default: what the throttle lets through.

    python3 -m bench.signin_flood            # 1000 guesses a scenario, 50 at a time
    python3 -m bench.signin_flood --smoke    # 100, 20 at a time

`tellonce serve --demo` runs in its own process (bench/pin_checks.py's start_server, default
settings), and three floods follow, each from its own address (X-Forwarded-For, which the
server believes from 127.0.0.1 as uvicorn does by default):
(1) guesses at one username (`alice`), (2) guesses spread over as many usernames, (3) right
passwords of three demo logins, (4) guesses at as many usernames as requests, all sent at once.
For each it prints the answers by status (each 401 a wrong password that was checked) and the
time. The server's log is searched for "Traceback" and for a 500.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.pin_checks import start_server

# The demo logins the first flood does not throttle; all with the password "demo".
SIGNERS = ("bob", "carol", "super")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="per scenario (1000)")
    parser.add_argument("--concurrency", type=int, default=50, help="at once (50)")
    parser.add_argument("--burst", type=int, default=300, help="the last flood, all at once (300)")
    parser.add_argument("--smoke", action="store_true", help="100 requests, 20 at once, 150")
    args = parser.parse_args(argv)
    if args.smoke:
        args.requests, args.concurrency, args.burst = 100, 20, 150
    if min(args.requests, args.concurrency, args.burst) < 1:
        parser.error("--requests, --concurrency and --burst must be at least 1")
    return args


async def flood(
    base_url: str, forms: list[dict[str, str]], *, address: str, concurrency: int
) -> tuple[collections.Counter[int], float]:
    """Each form posted to /api/auth/token, concurrency at a time: answers by status, seconds."""
    statuses: collections.Counter[int] = collections.Counter()
    todo = iter(forms)
    headers = {"x-forwarded-for": address}

    async def worker(http: httpx.AsyncClient) -> None:
        for form in todo:
            response = await http.post("/api/auth/token", data=form, headers=headers)
            statuses[response.status_code] += 1

    began = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits, trust_env=False) as http,
        asyncio.TaskGroup() as group,
    ):
        for _ in range(concurrency):
            group.create_task(worker(http))
    return statuses, time.perf_counter() - began


async def run(args: argparse.Namespace, base_url: str) -> list[str]:
    n, lines = args.requests, []
    scenarios = {
        "guesses at one username": (
            [{"username": "alice", "password": f"guess-{i}"} for i in range(n)],
            "198.51.100.1",
        ),
        "guesses over as many usernames": (
            [{"username": f"user-{i}", "password": f"guess-{i}"} for i in range(n)],
            "198.51.100.2",
        ),
        "right passwords": (
            [{"username": SIGNERS[i % len(SIGNERS)], "password": "demo"} for i in range(n)],
            "198.51.100.3",
        ),
    }
    for name, (forms, address) in scenarios.items():
        statuses, took = await flood(base_url, forms, address=address, concurrency=args.concurrency)
        lines.append(f"  {name}: {answers(statuses)} in {took:.1f} s")
    # As many usernames as there are requests, all sent at once: more than the sign-ins checked
    # at once (TELLONCE_SIGNIN_MAX_PENDING, 100) and than the address's failures (100).
    burst = [{"username": f"burst-{i}", "password": "guess"} for i in range(args.burst)]
    statuses, took = await flood(base_url, burst, address="198.51.100.4", concurrency=args.burst)
    lines.append(f"  {args.burst} usernames at once: {answers(statuses)} in {took:.1f} s")
    return lines


def answers(statuses: collections.Counter[int]) -> str:
    """The answers by status; each 401 is a wrong password that was checked."""
    return ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tellonce-signin-flood-"))
    server = None
    try:
        server = start_server(workdir, secrets.token_urlsafe(32))
        lines = asyncio.run(run(args, f"http://127.0.0.1:{server.port}"))
        log = server.log.read_text(errors="replace")
        faults = log.count("Traceback") + log.count(" 500 ")
        if faults:
            print(log[-3000:], file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"POST /api/auth/token, {args.requests} a flood, {args.concurrency} at once, "
        f"then {args.burst} at once:"
    )
    print("\n".join(lines))
    print(f"  tracebacks or 500s in the server's log: {faults}")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
