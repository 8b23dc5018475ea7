"""Tokens that end: a sign-out or a disabled user ends every token of theirs and closes their
sockets at once, on every instance; a disabled user cannot sign in until enabled again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from support import DEADLINE, Api, LiveServer, Ws
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


@asynccontextmanager
async def socket_of(url: str, token: str) -> AsyncIterator[ClientConnection]:
    """A signed-in socket, ready (the replay done)."""
    async with connect(url, proxy=None, open_timeout=DEADLINE) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token, "last_seq": None}))
        while json.loads(await asyncio.wait_for(ws.recv(), DEADLINE)).get("type") != "ready":
            pass
        yield ws


async def close_code(ws: ClientConnection) -> int:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(DEADLINE):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, "closed with no close frame"
    return closed.value.rcvd.code


async def sign_in(api: Api, username: str, password: str = "demo") -> int:
    r = await api.http.post("/api/auth/token", data={"username": username, "password": password})
    return r.status_code


async def status_of(api: Api, username: str) -> str:
    users = (await api.http.get("/api/users", headers=await api.login("super"))).json()
    status: str = {u["username"]: u["status"] for u in users}[username]
    return status


async def me(api: Api, token: str) -> int:
    r = await api.http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


async def test_a_sign_out_ends_every_token_of_the_user_and_their_sockets(api: Api) -> None:
    await api.set_status("alice", "available")
    first = api.tokens["alice"]
    r = await api.http.post("/api/auth/token", data={"username": "alice", "password": "demo"})
    second = r.json()["access_token"]
    async with socket_of(api.live.ws_url, first) as ws:
        r = await api.http.post("/api/auth/sign-out", headers={"Authorization": f"Bearer {first}"})
        assert r.status_code == 204 and r.content == b""
        assert await close_code(ws) == 4401
    # Both tabs' tokens are over, the one signed out with and the other.
    assert (await me(api, first), await me(api, second)) == (401, 401)
    r = await api.http.post("/api/auth/sign-out", headers={"Authorization": f"Bearer {first}"})
    assert r.status_code == 401
    # Signing out also stopped the calls coming.
    assert (await status_of(api, "alice")) == "offline"
    r = await api.http.get(
        "/api/audit", params={"action": "auth.signed_out"}, headers=await api.as_("super")
    )
    assert [e["details"]["username"] for e in r.json()] == ["alice"]
    # A new sign-in works at once, even within the second of the sign-out.
    del api.tokens["alice"]
    await api.login("alice")
    assert await me(api, api.tokens["alice"]) == 200
    async with socket_of(api.live.ws_url, api.tokens["alice"]):
        pass


async def test_a_disabled_user_is_refused_everywhere_until_enabled(
    api: Api, ws: Callable[..., Any]
) -> None:
    boss = await ws("super")
    old = (await api.login("alice"), api.tokens["alice"])[1]
    alice_id = api.ids["alice"]
    async with socket_of(api.live.ws_url, old) as alice_ws:
        r = await api.post(f"/api/users/{alice_id}/disable", "super")
        assert r.status_code == 200, r.text
        assert r.json()["disabled"] is True and r.json()["username"] == "alice"
        assert await close_code(alice_ws) == 4401
    event = await boss.next("user.signed_out")
    assert event["data"] == {"user_id": alice_id, "reason": "disabled"}
    assert await me(api, old) == 401
    # The right password is refused as a wrong one is.
    r = await api.http.post("/api/auth/token", data={"username": "alice", "password": "demo"})
    assert r.status_code == 401 and r.json() == {"detail": "wrong username or password"}
    # A socket with the old token is refused too.
    async with connect(api.live.ws_url, proxy=None, open_timeout=DEADLINE) as stale:
        await stale.send(json.dumps({"type": "auth", "token": old}))
        assert await close_code(stale) == 4401
    users = (await api.http.get("/api/users", headers=await api.login("super"))).json()
    assert {u["username"]: u["disabled"] for u in users}["alice"] is True
    # Disabling twice changes nothing more.
    r = await api.post(f"/api/users/{alice_id}/disable", "super")
    assert r.status_code == 200 and r.json()["disabled"] is True

    r = await api.post(f"/api/users/{alice_id}/enable", "super")
    assert r.status_code == 200 and r.json()["disabled"] is False
    assert await sign_in(api, "alice") == 200
    # Tokens from before the disable stay dead.
    assert await me(api, old) == 401
    # The trail says who did it: one disable (the second changed nothing), one enable.
    r = await api.http.get(
        "/api/audit", params={"user_id": alice_id}, headers=await api.as_("super")
    )
    changes = [e["action"] for e in r.json() if e["action"] in ("user.disabled", "user.enabled")]
    assert changes == ["user.enabled", "user.disabled"]
    assert {e["actor_id"] for e in r.json() if e["action"] in changes} == {api.ids["super"]}


async def test_disable_and_enable_are_a_supervisors_and_not_of_oneself(api: Api) -> None:
    await api.login("alice")
    await api.login("bob")
    boss = await api.login("super")
    for action in ("disable", "enable"):
        path = f"/api/users/{api.ids['bob']}/{action}"
        r = await api.post(path, "alice")
        assert r.status_code == 403, r.text
        r = await api.http.post(path)
        assert r.status_code == 401, r.text
        r = await api.http.post(f"/api/users/999999/{action}", headers=boss)
        assert r.status_code == 404 and r.json() == {"detail": "user not found"}
        r = await api.http.post(f"/api/users/0/{action}", headers=boss)
        assert r.status_code == 422, r.text
    r = await api.post(f"/api/users/{api.ids['super']}/disable", "super")
    assert r.status_code == 409 and "their own" in r.json()["detail"]
    assert await sign_in(api, "super") == 200


async def test_a_disabled_agents_offer_goes_back_to_the_queue_at_once(
    api: Api, ws: Callable[..., Any]
) -> None:
    boss: Ws = await ws("super")
    await api.set_status("alice", "available")
    call_id = await api.new_call()
    offered = await boss.next("call.offered", call_id=call_id)
    assert offered["data"]["agent_id"] == api.ids["alice"]

    r = await api.post(f"/api/users/{api.ids['alice']}/disable", "super")
    assert r.status_code == 200, r.text
    revoked = await boss.next("call.offer_revoked", call_id=call_id)
    assert revoked["data"] == {"call_id": call_id, "reason": "signed_out"}
    status = await boss.next("agent.status", where=lambda d: d["user_id"] == api.ids["alice"])
    assert status["data"]["status"] == "offline"
    await boss.next("call.queued", call_id=call_id)
    call = await api.call(call_id)
    assert call["state"] == "queued" and call["agent_id"] is None


async def test_a_sign_out_closes_the_users_sockets_on_every_instance(
    api: Api, server_factory: Callable[..., LiveServer]
) -> None:
    other = server_factory()
    await api.login("bob")
    async with socket_of(other.ws_url, api.tokens["bob"]) as elsewhere:
        r = await api.post("/api/auth/sign-out", "bob")
        assert r.status_code == 204, r.text
        # The other instance hears of it from the outbox (the embedded bus is in-process).
        assert await close_code(elsewhere) == 4401
