"""Several real `tellonce serve` processes on one PostgreSQL and one Redis, and their clients.

Everything here waits on a condition with a deadline; nothing sleeps to let something happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from support import IVR_KEY, SECRET, free_port

# Generous: two cores, shared with other test runs.
DEADLINE_S = 20.0
START_DEADLINE_S = 60.0
PASSWORD = "multi-pass-1234"
CALLER_PREFIX = "+1555900"  # the test's callers; the demo data has calls of its own
QUEUES = {"card_lost": "cards", "loans": "loans"}  # of the default phone tree
Event = dict[str, Any]


async def eventually(
    check: Callable[[], Any], *, within: float = DEADLINE_S, what: str = "a condition"
) -> Any:
    """Call check (sync or async) until it returns something truthy; that value. Fails late."""
    deadline = time.monotonic() + within
    pause = 0.02
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(pause)  # a poll's pace, not a synchronisation
        pause = min(pause * 2, 0.25)


def tellonce_command() -> list[str]:
    """The installed `tellonce` script of this interpreter's environment."""
    beside = Path(sys.executable).with_name("tellonce")
    found = str(beside) if beside.exists() else shutil.which("tellonce")
    assert found, "the `tellonce` command is not installed (pip install -e .)"
    return [found]


def server_env(db_url: str, redis_url: str, **settings: Any) -> dict[str, str]:
    """The process environment of an instance: ours, without any TELLONCE_ setting inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    env.update(
        TELLONCE_DATABASE_URL=db_url,
        TELLONCE_REDIS_URL=redis_url,
        TELLONCE_SECRET_KEY=SECRET,
        TELLONCE_IVR_API_KEY=IVR_KEY,
        PYTHONUNBUFFERED="1",
    )
    env.update({f"TELLONCE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass
class Instance:
    """One `tellonce serve` subprocess."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    killed: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to the database or Redis."""
        # Set first: its sockets close a moment before the process shows as exited.
        self.killed = True
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(DEADLINE_S)

    def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(DEADLINE_S)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _die_with_test() -> None:
    """In the child: SIGKILL it if the test process dies, so no server outlives a crashed run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def start_instance(
    name: str, env: dict[str, str], log_dir: Path, *, demo: bool, port: int | None = None
) -> Instance:
    """Popen here, on the test's main thread: the child's death signal follows this thread."""
    port = port or free_port()
    log_path = log_dir / f"{name}.log"
    for n in itertools.count(2):
        if not log_path.exists():
            break
        log_path = log_dir / f"{name}.{n}.log"
    command = [*tellonce_command(), "serve", "--port", str(port), "--log-level", "warning"]
    if demo:
        command.append("--demo")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=log_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_test,
        )
    return Instance(name, port, proc, log_path)


async def wait_ready(instance: Instance, *, within: float = START_DEADLINE_S) -> None:
    async with httpx.AsyncClient(base_url=instance.base_url, timeout=5.0) as http:

        async def ready() -> bool:
            if not instance.alive:
                raise AssertionError(f"{instance.name} exited:\n{instance.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                return (await http.get("/readyz")).status_code == 200
            return False

        await eventually(ready, within=within, what=f"{instance.name} /readyz")


class RedisServer:
    """A redis-server process of the test's own, so that restarting it disturbs nobody else."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            check=False,
        )

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        with (self.log_dir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *("redis-server", "--bind", "127.0.0.1", "--port", str(self.port)),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_test,
            )

    async def wait_ping(self) -> None:
        await eventually(
            lambda: self.cli("ping").stdout.strip() == "PONG", what="redis to answer PING"
        )

    def shutdown(self) -> None:
        """As an operator would: `redis-cli shutdown nosave`; returns once the process is gone."""
        assert self.proc is not None
        self.cli("shutdown", "nosave")
        self.proc.wait(DEADLINE_S)

    def freeze(self) -> None:
        """SIGSTOP: sockets stay open and nothing answers, as on a paused VM."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def subscribers(self, channel: str) -> int:
        out = self.cli("pubsub", "numsub", channel).stdout.split()
        return int(out[1]) if len(out) == 2 else 0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(DEADLINE_S)


class EventStream:
    """A websocket client of GET /ws: every event with its arrival time, waits with deadlines."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.events: list[Event] = []
        self.arrived: dict[int, float] = {}
        self.ready_seq: int | None = None
        # The ready seq of the first connection: the stream holds every event after it.
        self.start_seq: int | None = None
        self.closed = asyncio.Event()
        self._changed = asyncio.Condition()
        self._conn: Any = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def last_seq(self) -> int | None:
        return self.events[-1]["seq"] if self.events else self.ready_seq

    async def connect(self, last_seq: int | None = None, url: str | None = None) -> EventStream:
        """Authenticate (resuming after last_seq), read the replay up to ready, then stream."""
        await self.close()
        self.url = url or self.url
        self.closed = asyncio.Event()
        self._conn = await websockets.connect(self.url, open_timeout=DEADLINE_S)
        await self._conn.send(
            json.dumps({"type": "auth", "token": self.token, "last_seq": last_seq})
        )
        while True:
            message = json.loads(await asyncio.wait_for(self._conn.recv(), DEADLINE_S))
            if message.get("type") == "ready":
                self.ready_seq = message["seq"]
                if self.start_seq is None:
                    self.start_seq = last_seq if last_seq is not None else self.ready_seq
                break
            await self._record(message)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _record(self, message: Event) -> None:
        if "seq" not in message:
            return
        # A resumed stream may repeat nothing (replay starts after last_seq); keep that honest.
        assert not self.events or message["seq"] > self.events[-1]["seq"], message
        self.arrived[message["seq"]] = time.monotonic()
        async with self._changed:
            self.events.append(message)
            self._changed.notify_all()

    async def _read(self) -> None:
        try:
            async for raw in self._conn:
                await self._record(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            async with self._changed:
                self._changed.notify_all()

    async def wait(
        self, found: Callable[[list[Event]], Any], *, within: float = DEADLINE_S, what: str = ""
    ) -> Any:
        """Wait until found(events) is truthy; its value."""
        async with asyncio.timeout(within):
            async with self._changed:
                while not (result := found(self.events)):
                    if self.closed.is_set():
                        raise ConnectionError(f"stream closed while waiting for {what}")
                    await self._changed.wait()
                return result

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self.events if e["type"] == type_]

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._conn = self._reader = None


async def full_replay(url: str, token: str) -> list[Event]:
    """Every event the user may see, from the first (last_seq 0), read up to ready."""
    stream = EventStream(url, token)
    await stream.connect(last_seq=0)
    await stream.close()
    return stream.events


@dataclass
class Agent:
    username: str
    id: int
    token: str
    stream: EventStream
    home: Instance
    # When the agent was last made free (status set available, or a wrap answered).
    free_at: list[float] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Cluster:
    """The running instances and an HTTP client to each; requests go to the live ones."""

    def __init__(self, instances: list[Instance], env: dict[str, str], log_dir: Path) -> None:
        self.instances = instances
        self.env = env
        self.log_dir = log_dir
        # Every process started, the dead and the restarted included: all stopped at teardown.
        self.processes = list(instances)
        self.http = {
            i.name: httpx.AsyncClient(base_url=i.base_url, timeout=DEADLINE_S) for i in instances
        }
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}
        self._spread = itertools.count()
        self.agents: list[Agent] = []
        # Requests lost with a dead instance and sent again to another.
        self.repeated: list[str] = []

    @property
    def live(self) -> list[Instance]:
        return [i for i in self.instances if i.alive and not i.killed]

    def next_instance(self) -> Instance:
        live = self.live
        return live[next(self._spread) % len(live)]

    async def request(
        self,
        method: str,
        path: str,
        *,
        via: Instance | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """To `via` (else the next live instance); a failed connection moves on to the next one.

        As a load balancer does: a request lost with its instance may have been done already,
        so callers of non-idempotent routes accept the answer a repeat gets.
        """
        target = via or self.next_instance()
        for _attempt in range(len(self.instances) + 1):
            try:
                return await self.http[target.name].request(method, path, headers=headers, **kwargs)
            except httpx.TransportError:
                if not target.killed:
                    raise
                self.repeated.append(f"{method} {path}")
                target = self.next_instance()
        raise AssertionError(f"{method} {path}: no instance answered")

    @property
    def ivr(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {IVR_KEY}"}

    async def login(self, username: str, password: str = "demo") -> dict[str, str]:
        if username not in self.tokens:
            r = await self.request(
                "POST", "/api/auth/token", data={"username": username, "password": password}
            )
            assert r.status_code == 200, r.text
            self.tokens[username] = r.json()["access_token"]
            self.ids[username] = r.json()["user"]["id"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def add_agents(
        self,
        count: int,
        *,
        prefix: str = "agent",
        skills: Iterable[str] = ("cards",),
        homes: list[Instance] | None = None,
    ) -> list[Agent]:
        """New agents, streaming from the homes given, else from the instances in turn; offline."""
        supervisor = await self.login("super")
        made = []
        for n in range(count):
            username = f"{prefix}{n:02d}"
            r = await self.request(
                "POST",
                "/api/users",
                headers=supervisor,
                json={
                    "username": username,
                    "password": PASSWORD,
                    "display_name": f"Agent {n:02d}",
                    "role": "agent",
                    "skills": list(skills),
                },
            )
            assert r.status_code == 201, r.text
            await self.login(username, PASSWORD)
            home = (homes or self.instances)[n % len(homes or self.instances)]
            stream = EventStream(home.ws_url, self.tokens[username])
            await stream.connect()
            made.append(Agent(username, self.ids[username], self.tokens[username], stream, home))
        self.agents.extend(made)
        return made

    async def set_status(self, agent: Agent, status: str, *, via: Instance | None = None) -> None:
        r = await self.request(
            "PUT", "/api/me/status", via=via, headers=agent.auth, json={"status": status}
        )
        assert r.status_code == 200, r.text
        if status == "available":
            agent.free_at.append(time.monotonic())

    async def new_call(
        self, n: int, *, via: Instance | None = None, intent: str = "card_lost"
    ) -> int:
        """A caller through the phone tree: the call made, then handed off (`cards` by default)."""
        r = await self.request(
            "POST",
            "/api/calls",
            via=via,
            headers=self.ivr,
            json={"caller_number": f"{CALLER_PREFIX}{n:04d}", "language": "en"},
        )
        assert r.status_code == 201, r.text
        call_id: int = r.json()["id"]
        await self.handoff(call_id, via=self.next_instance() if via is None else via, intent=intent)
        return call_id

    async def handoff(
        self, call_id: int, *, via: Instance | None = None, intent: str = "card_lost"
    ) -> None:
        r = await self.request(
            "POST",
            f"/api/calls/{call_id}/handoff",
            via=via,
            headers=self.ivr,
            json={
                "intent": intent,
                "collected": {},
                "utterance": None,
                "escalate_reason": None,
            },
        )
        if r.status_code == 409:
            # A repeat of a handoff whose answer was lost with its instance: done already.
            assert "handed off already" in r.text, r.text
            return
        assert r.status_code == 200, r.text
        assert r.json()["queue"] == QUEUES[intent]

    async def calls(self) -> dict[int, dict[str, Any]]:
        r = await self.request("GET", "/api/calls", headers=await self.login("super"))
        assert r.status_code == 200, r.text
        return {c["id"]: c for c in r.json()}

    async def supervisor_replay(self) -> list[Event]:
        await self.login("super")
        return await full_replay(self.next_instance().ws_url, self.tokens["super"])

    async def restart(self, instance: Instance) -> Instance:
        """Start a dead instance again on its port, as its supervisor (systemd, k8s) would."""
        assert not instance.alive
        again = start_instance(
            instance.name, self.env, self.log_dir, demo=False, port=instance.port
        )
        self.processes.append(again)
        self.instances[self.instances.index(instance)] = again
        await self.http[instance.name].aclose()
        self.http[instance.name] = httpx.AsyncClient(base_url=again.base_url, timeout=DEADLINE_S)
        await wait_ready(again)
        return again

    async def aclose(self) -> None:
        for agent in self.agents:
            await agent.stream.close()
        for client in self.http.values():
            await client.aclose()


# --- what the event log must show ----------------------------------------------------------


def check_offers(events: list[Event]) -> dict[str, int]:
    """Replay the log: a call on offer to one agent at a time, an agent with one offer or call.

    Every offer ends exactly once (revoked, accepted, or the call requeued or abandoned) before
    the call is offered again. Returns counts by event type, to check that the log is not empty.
    """
    on_offer: dict[int, int] = {}  # call -> agent
    holding: dict[int, int] = {}  # agent -> call on offer or connected
    counts: dict[str, int] = {}
    for event in events:
        kind, data, seq = event["type"], event["data"], event["seq"]
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "call.offered":
            call, agent = data["id"], data["agent_id"]
            assert call not in on_offer, (
                f"seq {seq}: call {call} offered to {agent} while on offer to {on_offer[call]}"
            )
            assert agent not in holding, (
                f"seq {seq}: agent {agent} offered call {call} while holding {holding[agent]}"
            )
            on_offer[call] = agent
            holding[agent] = call
        elif kind == "call.offer_revoked":
            call = data["call_id"]
            assert call in on_offer, f"seq {seq}: offer of call {call} revoked, but none is open"
            holding.pop(on_offer.pop(call))
        elif kind == "call.connected":
            call, agent = data["id"], data["agent_id"]
            assert on_offer.pop(call, None) == agent, f"seq {seq}: {call} connected, not offered"
        elif kind == "call.ended":
            call, agent = data["id"], data["agent_id"]
            assert holding.pop(agent, None) == call, f"seq {seq}: {call} ended, not {agent}'s"
        elif kind in ("call.queued", "call.abandoned"):
            call = data.get("call_id", data.get("id"))
            # A reject or a transfer requeues without a revoke: the offer or call ends here.
            if call in on_offer:
                holding.pop(on_offer.pop(call))
    return counts


def offers(events: list[Event]) -> list[Event]:
    return [e for e in events if e["type"] == "call.offered"]


def seqs(events: list[Event]) -> list[int]:
    return [e["seq"] for e in events]


# --- agents at work ------------------------------------------------------------------------


def other_than(cluster: Cluster, *avoid: Instance) -> Instance:
    """A live instance other than those given when there is one: requests cross instances."""
    live = cluster.live
    choices = [i for i in live if i not in avoid] or live
    return choices[next(cluster._spread) % len(choices)]


async def answer_calls(
    cluster: Cluster, agent: Agent, *, reconnect: bool = False, within: float = 120.0
) -> None:
    """Accept every offer the agent's stream shows and wrap the call, each through another
    instance than the stream's; with reconnect, a closed stream resumes on a live instance."""
    cursor = 0

    def next_offer(events: list[Event]) -> tuple[int, Event] | None:
        for index in range(cursor, len(events)):
            if events[index]["type"] == "call.offered":
                return index, events[index]
        return None

    while True:
        try:
            index, offer = await agent.stream.wait(next_offer, within=within, what="an offer")
        except ConnectionError:
            if not reconnect:
                raise
            agent.home = other_than(cluster, agent.home)
            await agent.stream.connect(agent.stream.last_seq, url=agent.home.ws_url)
            continue
        cursor = index + 1
        call_id = offer["data"]["id"]
        r = await cluster.request(
            "POST",
            f"/api/calls/{call_id}/accept",
            via=other_than(cluster, agent.home),
            headers=agent.auth,
        )
        if r.status_code == 409 and not await _is_mine(cluster, agent, call_id, "connected"):
            continue  # revoked before the accept: a timeout, or a replayed old offer
        assert r.status_code in (200, 409), r.text
        r = await cluster.request(
            "POST",
            f"/api/calls/{call_id}/wrap",
            via=other_than(cluster, agent.home),
            headers=agent.auth,
            json={"disposition": "resolved", "sentiment": "neutral"},
        )
        # 409 only for a wrap repeated after its instance died with the answer.
        assert r.status_code == 200 or await _is_mine(cluster, agent, call_id, "ended"), r.text
        agent.free_at.append(time.monotonic())


async def _is_mine(cluster: Cluster, agent: Agent, call_id: int, state: str) -> bool:
    r = await cluster.request("GET", f"/api/calls/{call_id}", headers=agent.auth)
    assert r.status_code == 200, r.text
    call = r.json()
    return bool(call["state"] == state and call["agent_id"] == agent.id)


def offer_delays(agent: Agent, handed_off: dict[int, float]) -> list[float]:
    """For each offer the agent saw: seconds from the moment both the call was queued and the
    agent free (as their answers reached the client) to the offer's arrival; 0 if earlier.

    The agent takes its offers one at a time, so its k-th offer follows its k-th freeing.
    """
    delays = []
    for k, offer in enumerate(agent.stream.of_type("call.offered")):
        possible = max(handed_off[offer["data"]["id"]], agent.free_at[k])
        delays.append(max(0.0, agent.stream.arrived[offer["seq"]] - possible))
    return delays
