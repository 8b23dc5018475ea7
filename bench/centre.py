"""A call centre seen from the client side: the IVR, agents with websockets, supervisors.

Spread over the deployment's instances: agent i talks to instance i mod n (its API and its
websocket alike), and the IVR's calls go round the instances in turn.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.client import Http, Socket, gather_limited
from bench.servers import PASSWORD, SUPERVISOR, Deployment

SKILLS = ["billing", "cards", "loans", "escalations"]
INTENTS = ["billing", "card_lost", "loans"]
# What a phone tree gathers before a handoff: a short, realistic screen pop.
COLLECTED = {"language": "en", "account_number": "12345678", "reason_detail": "statement"}
SETUP_CONCURRENCY = 8

# An agent's reaction to an offer: (agent, call id, receive time, raw event).
OnOffer = Callable[["Agent", int, float, str], None]


@dataclass
class Agent:
    username: str
    token: str
    user_id: int
    http: Http
    socket: Socket


class Centre:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.http = [Http(port, max_connections=128) for port in deployment.ports]
        self.ivr_key = deployment.ivr_key or ""
        self.super_token = ""
        self.agents: list[Agent] = []
        self.on_offer: OnOffer | None = None
        self._ivr_turn = itertools.cycle(range(len(self.http)))
        self._callers = itertools.count(1)
        self.offer_bytes: list[int] = []

    async def start(self) -> None:
        self.super_token = (await self.login(SUPERVISOR, self.http[0]))["access_token"]

    async def close(self) -> None:
        await asyncio.gather(*(a.socket.close() for a in self.agents))
        for http in self.http:
            await http.close()

    async def login(self, username: str, http: Http) -> dict[str, Any]:
        form = {"username": username, "password": PASSWORD}
        result: dict[str, Any] = await http.request("POST", "/api/auth/token", form=form)
        return result

    async def create_user(
        self, username: str, role: str, *, skills: list[str] | None = None
    ) -> None:
        body = {
            "username": username,
            "password": PASSWORD,
            "display_name": username,
            "role": role,
            "skills": (SKILLS if skills is None else skills) if role == "agent" else [],
        }
        await self.http[0].request("POST", "/api/users", body=body, token=self.super_token)

    async def add_agents(
        self,
        count: int,
        *,
        prefix: str = "agent",
        skills: list[str] | None = None,
        available: bool = True,
    ) -> None:
        """Create, sign in and connect count agents (with every skill unless told), and set
        them available unless told."""
        start = len(self.agents)

        async def one(i: int) -> Agent:
            username = f"{prefix}{i:05d}"
            await self.create_user(username, "agent", skills=skills)
            http = self.http[i % len(self.http)]
            token = await self.login(username, http)
            socket = Socket(http.port, token["access_token"], token["user"]["id"])
            agent = Agent(username, socket.token, socket.user_id, http, socket)
            socket.on_event = lambda _s, raw, now, agent=agent: self._event(agent, raw, now)
            await socket.open()
            if available:
                await http.request(
                    "PUT", "/api/me/status", body={"status": "available"}, token=agent.token
                )
            return agent

        jobs = (one(i) for i in range(start, start + count))
        self.agents.extend(await gather_limited(jobs, SETUP_CONCURRENCY))

    def _event(self, agent: Agent, raw: str, now: float) -> None:
        if '"type":"call.offered"' not in raw or self.on_offer is None:
            return
        call_id = json.loads(raw)["data"]["id"]
        self.offer_bytes.append(len(raw))
        self.on_offer(agent, call_id, now, raw)

    def ivr(self) -> Http:
        return self.http[next(self._ivr_turn)]

    async def create_call(self, http: Http) -> int:
        number = f"+1555{next(self._callers) % 10_000_000:07d}"
        body = {"caller_number": number}
        call = await http.request("POST", "/api/calls", body=body, token=self.ivr_key)
        return int(call["id"])

    async def handoff(self, http: Http, call_id: int, n: int) -> None:
        body = {
            "intent": INTENTS[n % len(INTENTS)],
            "collected": COLLECTED,
            "utterance": None,
            "escalate_reason": None,
        }
        await http.request("POST", f"/api/calls/{call_id}/handoff", body=body, token=self.ivr_key)

    @staticmethod
    async def accept(agent: Agent, call_id: int) -> None:
        await agent.http.request("POST", f"/api/calls/{call_id}/accept", token=agent.token)

    @staticmethod
    async def wrap(agent: Agent, call_id: int) -> None:
        body = {"disposition": "resolved", "sentiment": "neutral"}
        await agent.http.request("POST", f"/api/calls/{call_id}/wrap", body=body, token=agent.token)

    async def supervisor_tokens(self, count: int, *, prefix: str = "super") -> list[str]:
        """count supervisor logins (created on first use)."""

        async def one(i: int) -> str:
            username = f"{prefix}{i:04d}"
            await self.create_user(username, "supervisor")
            token: str = (await self.login(username, self.http[0]))["access_token"]
            return token

        return list(await gather_limited((one(i) for i in range(count)), SETUP_CONCURRENCY))
