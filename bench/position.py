"""What a waiting caller's position checks cost as the queue grows, in process.

    python3 -m bench.position                 # queues of 10, 300 and 1000 callers
    python3 -m bench.position --waiting 50,500 --checks 500

For each queue length: a fresh SQLite file, that many calls handed off to `billing` with no
agent signed in, then `GET /api/calls/{id}/position` of the last of them, `--checks` times
through httpx's ASGITransport into the app (no socket), sequentially. It prints the median
time and the process's CPU per check. A phone tree asks for the position of every waiting
caller every few seconds (the simulator: every 2 s), so the server's load from waiting callers
is this cost times the callers over that interval.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app
from app.migrate import upgrade

IVR_KEY = "bench-position-ivr-key-0123456789"


async def measure(url: str, waiting: int, checks: int) -> None:
    settings = Settings(
        database_url=url,
        ivr_api_key=SecretStr(IVR_KEY),
        secret_key=SecretStr("bench-position-secret-0123456789abcdef"),
    )
    app = create_app(settings)
    headers = {"authorization": f"Bearer {IVR_KEY}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            last = 0
            for n in range(waiting):
                r = await http.post(
                    "/api/calls", json={"caller_number": f"+1555{n:07d}"}, headers=headers
                )
                r.raise_for_status()
                last = int(r.json()["id"])
                handoff = {"intent": "billing", "collected": {}}
                r = await http.post(f"/api/calls/{last}/handoff", json=handoff, headers=headers)
                r.raise_for_status()
            times = []
            cpu = time.process_time()
            for _ in range(checks):
                began = time.perf_counter()
                r = await http.get(f"/api/calls/{last}/position", headers=headers)
                times.append(time.perf_counter() - began)
            r.raise_for_status()
            per_check = (time.process_time() - cpu) / checks
    print(
        f"{waiting:>6} waiting: position {r.json()['position']:>5}, "
        f"median {statistics.median(times) * 1000:.2f} ms, CPU {per_check * 1000:.2f} ms a check",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", default="10,300,1000", help="queue lengths, comma-separated")
    parser.add_argument("--checks", type=int, default=300)
    parser.add_argument("--smoke", action="store_true", help="tiny: queues of 2 and 20, 20 checks")
    args = parser.parse_args()
    lengths = [int(n) for n in args.waiting.split(",")]
    if args.smoke:
        lengths, args.checks = [2, 20], 20
    with tempfile.TemporaryDirectory(prefix="tellonce-position-") as directory:
        for waiting in lengths:
            url = f"sqlite+aiosqlite:///{Path(directory) / f'q{waiting}.db'}"
            upgrade(url)
            asyncio.run(measure(url, waiting, args.checks))


if __name__ == "__main__":
    main()
