"""The floor: FastAPI + uvicorn + websockets answering the benchmark's routes with no database.

Same routes, same bodies in, events and responses of the same size out as Tellonce, and no logic
beyond handing each call to a free agent: what the stack itself costs, for the ratios.

    python -m bench.floor --port 8001 --event-bytes 1400
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import deque
from datetime import UTC, datetime
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Form, Header, WebSocket, WebSocketDisconnect


class Floor:
    def __init__(self, event_bytes: int) -> None:
        self.event_bytes = event_bytes
        self.ids = itertools.count(1)
        self.seq = itertools.count(1)
        self.users: dict[str, dict[str, Any]] = {}
        self.sockets: dict[int, list[WebSocket]] = {}
        self.supervisors: list[WebSocket] = []
        self.free: deque[int] = deque()
        self.waiting: deque[int] = deque()
        self.agent_of: dict[int, int] = {}

    def event(self, type_: str, call_id: int) -> str:
        """An envelope padded to event_bytes, like a real event carrying a call context."""
        at = datetime.now(UTC).isoformat()
        head = {"seq": next(self.seq), "type": type_, "at": at, "data": {"id": call_id, "pad": ""}}
        text = json.dumps(head, separators=(",", ":"))
        pad = max(0, self.event_bytes - len(text))
        head["data"]["pad"] = "x" * pad
        return json.dumps(head, separators=(",", ":"))

    def body(self, call_id: int) -> dict[str, Any]:
        return {"id": call_id, "state": "connected", "pad": "x" * max(0, self.event_bytes - 60)}

    def user(self, authorization: str | None) -> dict[str, Any]:
        token = (authorization or "").removeprefix("Bearer ")
        return self.users[token]

    async def offer(self, call_id: int) -> None:
        while self.free:
            agent = self.free.popleft()
            sockets = self.sockets.get(agent)
            if not sockets:
                continue
            self.agent_of[call_id] = agent
            text = self.event("call.offered", call_id)
            for ws in sockets:
                await ws.send_text(text)
            return
        self.waiting.append(call_id)


def create_app(event_bytes: int) -> FastAPI:
    app = FastAPI()
    floor = Floor(event_bytes)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/users", status_code=201)
    async def create_user(body: dict[str, Any]) -> dict[str, Any]:
        user = {"id": next(floor.ids), "username": body["username"], "role": body["role"]}
        floor.users[body["username"]] = user
        return user

    @app.post("/api/auth/token")
    async def token(
        username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> dict[str, Any]:
        if username not in floor.users:
            floor.users[username] = {"id": next(floor.ids), "username": username}
            floor.users[username]["role"] = "supervisor" if "super" in username else "agent"
        return {"access_token": username, "token_type": "bearer", "user": floor.users[username]}

    @app.put("/api/me/status")
    async def status(
        body: dict[str, str], authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        user = floor.user(authorization)
        if body["status"] == "available":
            floor.free.append(user["id"])
            if floor.waiting:
                await floor.offer(floor.waiting.popleft())
        return {**user, "status": body["status"]}

    @app.post("/api/calls", status_code=201)
    async def create_call(body: dict[str, Any]) -> dict[str, Any]:
        call_id = next(floor.ids)
        if floor.supervisors:
            text = floor.event("call.created", call_id)
            for ws in list(floor.supervisors):
                await ws.send_text(text)
        return {"id": call_id, "state": "ivr", "caller_known": False}

    @app.post("/api/calls/{call_id}/handoff")
    async def handoff(call_id: int, body: dict[str, Any]) -> dict[str, Any]:
        await floor.offer(call_id)
        return {"id": call_id, "state": "queued", "queue": "billing", "position": 1}

    @app.post("/api/calls/{call_id}/accept")
    async def accept(call_id: int) -> dict[str, Any]:
        return floor.body(call_id)

    @app.post("/api/calls/{call_id}/wrap")
    async def wrap(call_id: int, body: dict[str, Any]) -> dict[str, Any]:
        agent = floor.agent_of.pop(call_id, None)
        if agent is not None:
            floor.free.append(agent)
            if floor.waiting:
                await floor.offer(floor.waiting.popleft())
        return floor.body(call_id)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        auth = json.loads(await websocket.receive_text())
        user = floor.users[auth["token"]]
        supervisor = user.get("role") == "supervisor"
        floor.sockets.setdefault(user["id"], []).append(websocket)
        if supervisor:
            floor.supervisors.append(websocket)
        await websocket.send_text(json.dumps({"type": "ready", "seq": 0}))
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            floor.sockets[user["id"]].remove(websocket)
            if supervisor:
                floor.supervisors.remove(websocket)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--event-bytes", type=int, default=1400)
    args = parser.parse_args()
    # The same uvicorn options as `tellonce serve` (app/cli.py), log level as the bench runs it.
    uvicorn.run(create_app(args.event_bytes), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
