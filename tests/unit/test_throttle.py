"""The sign-in throttle on its own, on limits' memory storage: what counts, what is refused, and
a Redis that does not answer."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
from pydantic import SecretStr

from app.auth.throttle import SigninThrottle, address_key, username_key
from app.config import Settings
from app.errors import TooManyRequests, Unavailable


def throttle(**overrides: Any) -> SigninThrottle:
    settings = Settings(
        secret_key=SecretStr("unit-test-secret-key-0123456789abcdef"),
        ivr_api_key=SecretStr("unit-test-ivr-key-0123456789"),
        **overrides,
    )
    return SigninThrottle(settings)


async def sign_in(t: SigninThrottle, username: str, *, ok: bool, host: str = "10.0.0.1") -> None:
    async with t.attempt(username, host) as attempt:
        attempt.ok = ok


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        (None, "unknown"),
        ("", "unknown"),
        ("testclient", "testclient"),
        ("x" * 500, "x" * 64),
    ],
)
def test_address_key(host: str | None, key: str) -> None:
    assert address_key(host) == key


def test_username_key_is_short_and_hides_the_name() -> None:
    key = username_key("alice" * 1000)
    assert len(key) == 32 and "alice" not in key
    assert username_key("alice") != username_key("Alice")
    assert username_key("\udcff") == username_key("\udcff")  # a lone surrogate is no error


async def test_failures_per_username_then_refused_with_retry_after() -> None:
    t = throttle(signin_failures_per_user=2, signin_window_s=60)
    for _ in range(2):
        await sign_in(t, "alice", ok=False)
    with pytest.raises(TooManyRequests) as refused:
        await sign_in(t, "alice", ok=True)
    assert refused.value.status_code == 429
    assert refused.value.retry_after is not None and 1 <= refused.value.retry_after <= 60
    await sign_in(t, "bob", ok=True)  # another username is not concerned
    await t.close()


async def test_a_success_neither_counts_nor_clears() -> None:
    t = throttle(signin_failures_per_user=2)
    await sign_in(t, "alice", ok=False)
    for _ in range(20):
        await sign_in(t, "alice", ok=True)
    await sign_in(t, "alice", ok=False)
    with pytest.raises(TooManyRequests):
        await sign_in(t, "alice", ok=True)


async def test_sign_ins_of_one_username_take_turns() -> None:
    """Concurrent guesses are judged one after another, each by the failures before it; and
    concurrent successes are all let through."""
    t = throttle(signin_failures_per_user=3)
    checked: list[int] = []

    async def guess(i: int) -> str:
        try:
            async with t.attempt("alice", "10.0.0.1") as attempt:
                checked.append(i)
                await asyncio.sleep(0)  # as a password check would, let the others run
                attempt.ok = False
        except TooManyRequests:
            return "refused"
        return "failed"

    answers = await asyncio.gather(*(guess(i) for i in range(20)))
    assert sorted(answers) == ["failed"] * 3 + ["refused"] * 17
    assert len(checked) == 3
    await asyncio.gather(*(sign_in(t, "bob", ok=True) for _ in range(20)))
    assert not t.turns and t.pending == 0  # nothing is left behind per username


async def test_the_address_counts_failures_only() -> None:
    t = throttle(signin_failures_per_address=1)
    for i in range(50):
        await sign_in(t, f"agent-{i}", ok=True)
    await sign_in(t, "agent-0", ok=False)
    with pytest.raises(TooManyRequests) as refused:
        await sign_in(t, "agent-1", ok=True)
    assert "address" in refused.value.detail
    await sign_in(t, "agent-1", ok=True, host="10.0.0.2")


async def test_pending_sign_ins_are_bounded() -> None:
    t = throttle(signin_max_pending=1)
    async with t.attempt("alice", "10.0.0.1") as attempt:
        with pytest.raises(Unavailable) as busy:
            await sign_in(t, "bob", ok=True)
        assert busy.value.status_code == 503 and busy.value.retry_after == 1
        attempt.ok = True
    assert t.pending == 0
    with pytest.raises(RuntimeError):
        async with t.attempt("bob", "10.0.0.1"):
            raise RuntimeError("the database went away")
    assert t.pending == 0
    await sign_in(t, "bob", ok=True)


async def test_a_redis_that_does_not_answer_leaves_the_count_to_this_instance(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and nothing listens there
    t = throttle(redis_url=f"redis://127.0.0.1:{port}/0", signin_failures_per_user=2)
    with caplog.at_level(logging.WARNING, logger="tellonce"):
        for _ in range(2):
            await sign_in(t, "alice", ok=False)
        with pytest.raises(TooManyRequests):
            await sign_in(t, "alice", ok=True)
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1
    await t.close()
