"""The embedded handoff's own time in the server, in process, with no sockets between.

    python3 -m bench.handoff_path                 # 1500 handoffs, 100 agents
    python3 -m bench.handoff_path --smoke         # a few, to see that it runs (CI)

The app runs in this process on a fresh SQLite file, its lifespan started (hub, router loop,
WAL checkpoints). Each lifecycle creates a call, hands it off, accepts and wraps it, back to
back. The handoff is one request to the ASGI app itself; this prints, as medians over the
handoffs, its time from the request to the offer's fan-out to the agent's sockets (what the
screen pop waits for in the server) and to the end of the response. The network, uvicorn and
the sockets' sends are left out: what remains is Tellonce's own work, steadier from run to run
than the full suite's figures, for comparing two commits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "bench-password-1"
COLLECTED = {"language": "en", "account_number": "12345678", "reason_detail": "statement"}
BODY = json.dumps(
    {"intent": "billing", "collected": COLLECTED, "utterance": None, "escalate_reason": None}
).encode()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1500, help="lifecycles (default 1500)")
    parser.add_argument("--agents", type=int, default=100, help="agents available (default 100)")
    parser.add_argument("--warmup", type=int, default=50, help="handoffs not counted (default 50)")
    parser.add_argument("--smoke", action="store_true", help="20 calls, 3 agents")
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.agents, args.warmup = 20, 3, 5
    return args


def handoff_scope(call_id: int, ivr_key: str) -> dict[str, Any]:
    path = f"/api/calls/{call_id}/handoff"
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"authorization", f"Bearer {ivr_key}".encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from app.config import Settings, resolve_ivr_api_key
    from app.main import create_app

    settings = Settings(database_url=url)
    ivr_key = resolve_ivr_api_key(settings)
    assert ivr_key is not None
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        hub = app.state.ctx.hub
        fanned_out: dict[int, float] = {}
        deliver = hub.deliver

        def timed_deliver(events: list[tuple[int, str, int | None, bool]]) -> None:
            now = time.perf_counter()
            for _, payload, _, _ in events:
                if '"type":"call.offered"' in payload[:60]:
                    fanned_out[json.loads(payload)["data"]["id"]] = now
            deliver(events)

        hub.deliver = timed_deliver
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            supervisor_token, agents = await setup_agents(http, args.agents)
            supervisor = {"authorization": f"Bearer {supervisor_token}"}
            ivr = {"authorization": f"Bearer {ivr_key}"}
            to_fan_out: list[float] = []
            whole: list[float] = []
            for n in range(args.calls):
                created = await http.post(
                    "/api/calls", json={"caller_number": f"+1555{n:07d}"}, headers=ivr
                )
                call_id = int(created.json()["id"])
                sent: list[Any] = []

                async def receive() -> dict[str, Any]:
                    return {"type": "http.request", "body": BODY, "more_body": False}

                async def send(message: Any, sent: list[Any] = sent) -> None:
                    sent.append(message)

                began = time.perf_counter()
                await app(handoff_scope(call_id, ivr_key), receive, send)
                ended = time.perf_counter()
                if sent[0]["status"] != 200 or call_id not in fanned_out:
                    raise RuntimeError(f"handoff of call {call_id}: {sent}")
                if n >= args.warmup:
                    to_fan_out.append(fanned_out.pop(call_id) - began)
                    whole.append(ended - began)
                await wrap_up(http, call_id, supervisor, agents)
    return {
        "handoffs": len(whole),
        "agents": args.agents,
        "to_fan_out_p50_us": round(statistics.median(to_fan_out) * 1e6, 1),
        "to_fan_out_p90_us": round(statistics.quantiles(to_fan_out, n=10)[-1] * 1e6, 1),
        "whole_request_p50_us": round(statistics.median(whole) * 1e6, 1),
    }


async def setup_agents(http: httpx.AsyncClient, count: int) -> tuple[str, dict[int, str]]:
    """Sign in the supervisor, create `count` agents, sign them in and set them available:
    the supervisor's token, and the agents' by their user id."""
    signed = await http.post("/api/auth/token", data={"username": "super", "password": PASSWORD})
    supervisor: str = signed.json()["access_token"]
    headers = {"authorization": f"Bearer {supervisor}"}
    agents: dict[int, str] = {}
    for i in range(count):
        username = f"agent{i:04d}"
        body = {
            "username": username,
            "password": PASSWORD,
            "role": "agent",
            "skills": ["billing", "cards", "loans", "escalations"],
        }
        created = await http.post("/api/users", json=body, headers=headers)
        created.raise_for_status()
        signed = await http.post(
            "/api/auth/token", data={"username": username, "password": PASSWORD}
        )
        token = signed.json()["access_token"]
        agents[int(created.json()["id"])] = token
        ready = await http.put(
            "/api/me/status",
            json={"status": "available"},
            headers={"authorization": f"Bearer {token}"},
        )
        ready.raise_for_status()
    return supervisor, agents


async def wrap_up(
    http: httpx.AsyncClient, call_id: int, supervisor: dict[str, str], agents: dict[int, str]
) -> None:
    """The agent the call was offered to accepts and wraps it, and is free again."""
    call = await http.get(f"/api/calls/{call_id}", headers=supervisor)
    agent = {"authorization": f"Bearer {agents[int(call.json()['agent_id'])]}"}
    accepted = await http.post(f"/api/calls/{call_id}/accept", headers=agent)
    accepted.raise_for_status()
    wrap = {"disposition": "resolved", "sentiment": "neutral"}
    wrapped = await http.post(f"/api/calls/{call_id}/wrap", json=wrap, headers=agent)
    wrapped.raise_for_status()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tellonce-handoff-path-"))
    url = f"sqlite+aiosqlite:///{workdir / 'tellonce.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    env["TELLONCE_DATABASE_URL"] = url
    try:
        create = [sys.executable, "-m", "app.cli", "user", "create", "super"]
        create += ["--password", PASSWORD, "--role", "supervisor"]
        subprocess.run(create, env=env, check=True, capture_output=True, timeout=120)
        for name in [k for k in os.environ if k.startswith("TELLONCE_")]:
            del os.environ[name]
        os.environ["TELLONCE_DATABASE_URL"] = url
        result = asyncio.run(run(args, url))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"embedded handoff in process, {result['handoffs']} handoffs, {result['agents']} agents: "
        f"to the offer's fan-out p50 {result['to_fan_out_p50_us']} us "
        f"(p90 {result['to_fan_out_p90_us']}), whole request p50 "
        f"{result['whole_request_p50_us']} us"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
