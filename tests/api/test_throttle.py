"""Sign-in throttling and the hashing it bounds, against a live server: 429 with Retry-After
per username and per address, never for a success; 503 past the pending sign-ins; PIN checks
that never wait behind sign-ins."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import DEADLINE, Api, LiveServer

TOKEN = "/api/auth/token"


async def sign_in(
    api: Api, username: str, password: str = "demo", *, address: str | None = None
) -> httpx.Response:
    # The test client is 127.0.0.1, whose X-Forwarded-For uvicorn trusts by default: the address
    # a trusted proxy forwards is the client's address.
    headers = {"X-Forwarded-For": address} if address else None
    return await api.http.post(
        TOKEN, data={"username": username, "password": password}, headers=headers
    )


def retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert isinstance(response.json()["detail"], str)
    value = int(response.headers["Retry-After"])
    assert value >= 1
    return value


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The secrets the server's argon2 checks were asked about, in order."""
    from app.auth import service as auth

    seen: list[str] = []
    verify = auth.verify_secret

    def counted(stored: str | None, secret: str) -> bool:
        seen.append(secret)
        return verify(stored, secret)

    monkeypatch.setattr(auth, "verify_secret", counted)
    yield seen


async def test_failures_then_429_even_for_the_right_password(
    server_factory: Callable[..., LiveServer], verify_calls: list[str]
) -> None:
    api = Api(server_factory(signin_failures_per_user=3, signin_window_s=300))
    try:
        for _ in range(3):
            assert (await sign_in(api, "alice", "wrong")).status_code == 401
        refused = await sign_in(api, "alice", "wrong")
        assert 1 <= retry_after(refused) <= 300
        assert "username" in refused.json()["detail"]
        # Refused before the password is looked at: a throttled guess tells nothing and costs
        # no hashing, so the right password is refused too.
        checked = len(verify_calls)
        right = await sign_in(api, "alice", "demo")
        assert 1 <= retry_after(right) <= 300
        assert len(verify_calls) == checked
        # Another username from the same address is not concerned.
        assert (await sign_in(api, "bob")).status_code == 200
    finally:
        await api.http.aclose()


async def test_unknown_usernames_are_throttled_alike(
    server_factory: Callable[..., LiveServer],
) -> None:
    """A username that does not exist is counted as one that does: a 429 tells no one which."""
    api = Api(server_factory(signin_failures_per_user=2))
    try:
        for name in ("alice", "nobody-here"):
            assert [(await sign_in(api, name, "wrong")).status_code for _ in range(3)] == [
                401,
                401,
                429,
            ]
    finally:
        await api.http.aclose()


async def test_the_window_clearing_lets_the_user_in(
    server_factory: Callable[..., LiveServer],
) -> None:
    api = Api(server_factory(signin_failures_per_user=2, signin_window_s=2))
    try:
        for _ in range(2):
            assert (await sign_in(api, "carol", "wrong")).status_code == 401
        assert retry_after(await sign_in(api, "carol")) <= 2
        deadline = time.monotonic() + DEADLINE
        while (answer := await sign_in(api, "carol")).status_code == 429:
            assert time.monotonic() < deadline, "still throttled long after the window"
            await asyncio.sleep(min(0.2, int(answer.headers["Retry-After"])))
        assert answer.status_code == 200, answer.text
    finally:
        await api.http.aclose()


async def test_only_failures_count(server_factory: Callable[..., LiveServer]) -> None:
    """A success neither counts nor clears the failures before it; the same user signing in
    many times at once (tabs, a script) is never refused."""
    api = Api(server_factory(signin_failures_per_user=3))
    try:
        answers = await asyncio.gather(*(sign_in(api, "bob") for _ in range(12)))
        assert [a.status_code for a in answers] == [200] * 12
        for _ in range(2):
            assert (await sign_in(api, "alice", "wrong")).status_code == 401
        assert (await sign_in(api, "alice")).status_code == 200
        assert (await sign_in(api, "alice", "wrong")).status_code == 401
        retry_after(await sign_in(api, "alice"))
    finally:
        await api.http.aclose()


async def test_concurrent_guesses_do_not_slip_past_the_count(
    server_factory: Callable[..., LiveServer], verify_calls: list[str]
) -> None:
    """Sign-ins of one username take turns, each judged by the failures before it: twenty
    guesses sent at once get three checks, not twenty."""
    api = Api(server_factory(signin_failures_per_user=3))
    try:
        answers = await asyncio.gather(*(sign_in(api, "alice", f"guess-{i}") for i in range(20)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [401] * 3 + [429] * 17
        assert len([s for s in verify_calls if s.startswith("guess-")]) == 3
    finally:
        await api.http.aclose()


async def test_an_address_with_many_failures_is_throttled_and_others_are_not(
    server_factory: Callable[..., LiveServer],
) -> None:
    api = Api(server_factory(signin_failures_per_address=3, signin_failures_per_user=5))
    try:
        office, home = "203.0.113.7", "198.51.100.9"
        for name in ("alice", "bob", "nobody"):
            assert (await sign_in(api, name, "wrong", address=office)).status_code == 401
        # Every sign-in from there waits, the right one of a user with no failure too.
        refused = await sign_in(api, "carol", address=office)
        retry_after(refused)
        assert "address" in refused.json()["detail"]
        assert (await sign_in(api, "carol", address=home)).status_code == 200
        # An IPv6 client is counted by its /64, which it holds whole.
        for i in range(3):
            bad = await sign_in(api, f"v6-{i}", "wrong", address=f"2001:db8:1:2::{i + 1}")
            assert bad.status_code == 401
        retry_after(await sign_in(api, "alice", address="2001:db8:1:2:ffff::9"))
        assert (await sign_in(api, "alice", address="2001:db8:1:3::1")).status_code == 200
    finally:
        await api.http.aclose()


async def test_a_busy_centre_behind_one_address_always_signs_in(
    server_factory: Callable[..., LiveServer],
) -> None:
    """A shift signing in from one office address: 300 successful sign-ins of many agents, ten
    at a time, with a typo among them, and an address limit of two failures. None is refused:
    only failures count."""
    api = Api(server_factory(signin_failures_per_address=2))
    try:
        supervisor = await api.as_("super")
        names = ["alice", "bob", "carol", "super"]
        for i in range(8):
            name = f"shift-agent-{i}"
            body = {"username": name, "password": "demo-password", "role": "agent"}
            created = await api.http.post("/api/users", json=body, headers=supervisor)
            assert created.status_code == 201, created.text
            names.append(name)

        def password(name: str) -> str:
            return "demo-password" if name.startswith("shift-") else "demo"

        assert (await sign_in(api, "bob", "typo")).status_code == 401
        codes: list[int] = []
        for batch in range(30):
            batch_names = [names[(batch * 10 + i) % len(names)] for i in range(10)]
            answers = await asyncio.gather(*(sign_in(api, n, password(n)) for n in batch_names))
            codes += [a.status_code for a in answers]
        assert codes == [200] * 300
    finally:
        await api.http.aclose()


class Gate:
    """Holds the server's argon2 checks of one secret until released (they run in threads), and
    records every secret checked, in the order the checks began."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
        from app.auth import service as auth

        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.checked: list[str] = []
        verify = auth.verify_secret

        def held(stored: str | None, given: str) -> bool:
            self.checked.append(given)
            if given == secret and not self.release.is_set():
                self.entered.release()
                self.release.wait(DEADLINE)
            return verify(stored, given)

        monkeypatch.setattr(auth, "verify_secret", held)

    async def wait_entered(self, count: int = 1) -> None:
        for _ in range(count):
            assert await asyncio.to_thread(self.entered.acquire, True, DEADLINE)


class Submitted:
    """Counts the hashing jobs that a module's async check (say app.calls.service's
    verify_secret_async) has handed to the hashing threads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        self.count = threading.Semaphore(0)
        original = getattr(module, name)

        async def observed(*args: Any) -> Any:
            task = asyncio.ensure_future(original(*args))
            # Runs after the task's first step, which hands the job to the threads.
            asyncio.get_running_loop().call_soon(self.count.release)
            return await task

        monkeypatch.setattr(module, name, observed)

    async def wait(self, count: int = 1) -> None:
        for _ in range(count):
            assert await asyncio.to_thread(self.count.acquire, True, DEADLINE)


async def test_sign_ins_past_the_pending_bound_get_503(
    server_factory: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Api(server_factory(signin_max_pending=1))
    gate = Gate(monkeypatch, "held-password")
    try:
        first = asyncio.create_task(sign_in(api, "alice", "held-password"))
        try:
            await gate.wait_entered()
            busy = await sign_in(api, "bob")
            assert busy.status_code == 503, busy.text
            assert busy.headers["Retry-After"] == "1"
            assert isinstance(busy.json()["detail"], str)
        finally:
            gate.release.set()
        assert (await asyncio.wait_for(first, DEADLINE)).status_code == 401
        # Nothing was counted against bob: he signs in as soon as there is room.
        assert (await sign_in(api, "bob")).status_code == 200
    finally:
        await api.http.aclose()


async def test_pin_checks_go_before_every_waiting_sign_in(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sign-ins hold every hashing thread and more wait for one; a PIN check asked for after
    them is the first to get a thread that comes free."""
    from app.auth.service import hashing_threads
    from app.calls import service as calls
    from app.users import service as users

    threads = hashing_threads().threads
    gate = Gate(monkeypatch, "held-password")
    sign_ins = Submitted(monkeypatch, users, "verify_password_async")
    pins = Submitted(monkeypatch, calls, "verify_secret_async")
    created = await api.http.post(
        "/api/calls", json={"caller_number": "+15557770001"}, headers=api.ivr
    )
    assert created.status_code == 201, created.text
    flood = [
        asyncio.create_task(sign_in(api, f"flood-{i}-{uuid.uuid4().hex[:6]}", "held-password"))
        for i in range(2 * threads + 4)
    ]
    try:
        await gate.wait_entered(threads)
        await sign_ins.wait(len(flood))
        verify = asyncio.create_task(
            api.http.post(
                f"/api/calls/{created.json()['id']}/verify",
                json={"account_number": "12345678", "pin": "1234"},
                headers=api.ivr,
            )
        )
        await pins.wait()
        assert not verify.done()
    finally:
        gate.release.set()
    verified = await asyncio.wait_for(verify, DEADLINE)
    assert verified.status_code == 200 and verified.json()["verified"] is True, verified.text
    answers = await asyncio.wait_for(asyncio.gather(*flood), DEADLINE)
    assert {a.status_code for a in answers} == {401}
    # After the checks that held the threads, the PIN's began among the first as many as there
    # are threads (each thread that came free took the PIN first, unless another already had),
    # ahead of the threads + 4 sign-ins waiting since before it.
    after_release = gate.checked[threads:]
    assert after_release.index("1234") < threads, after_release


@pytest.mark.redis
async def test_failures_on_one_instance_count_on_another(
    server_factory: Callable[..., LiveServer],
) -> None:
    """With Redis, every instance shares the count: failures on one are refused on the other."""
    settings = {
        "redis_url": "redis://127.0.0.1:6379/0",
        "signin_failures_per_user": 2,
        # 127.0.0.1's count is shared with earlier runs on the same Redis.
        "signin_failures_per_address": 1_000_000,
    }
    one, other = Api(server_factory(**settings)), Api(server_factory(**settings))
    name = f"shared-{uuid.uuid4().hex}"
    try:
        for _ in range(2):
            assert (await sign_in(one, name, "wrong")).status_code == 401
        retry_after(await sign_in(other, name, "wrong"))
        retry_after(await sign_in(one, name, "wrong"))
    finally:
        await one.http.aclose()
        await other.http.aclose()
