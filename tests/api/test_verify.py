"""POST /api/calls/{id}/verify: the account and PIN check, tries per call and lockout per account."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from support import Api

JANE = ("12345678", "1234")
VICTOR = ("23456789", "4321")
UNKNOWN_CALLER = "+15559990009"
UNVERIFIED = {"verified": False, "method": None, "verified_at": None}


async def new_call(api: Api, caller: str = UNKNOWN_CALLER) -> int:
    r = await api.post("/api/calls", None, {"caller_number": caller, "language": "en"})
    assert r.status_code == 201, r.text
    call_id: int = r.json()["id"]
    return call_id


async def verify(api: Api, call_id: int, account: str, pin: str) -> dict[str, Any]:
    r = await api.post(
        f"/api/calls/{call_id}/verify", None, {"account_number": account, "pin": pin}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"verified", "attempts_left", "locked"}
    return body


def answer(verified: bool, attempts_left: int, locked: bool) -> dict[str, Any]:
    return {"verified": verified, "attempts_left": attempts_left, "locked": locked}


async def assert_unverified(api: Api, call_id: int) -> None:
    assert (await api.call(call_id))["identity"] == UNVERIFIED


async def test_success_binds_the_account_verified_not_the_phone_matched(api: Api) -> None:
    # A number nobody has: not known, no customer.
    r = await api.post("/api/calls", None, {"caller_number": UNKNOWN_CALLER})
    assert r.status_code == 201 and r.json()["caller_known"] is False
    assert (await api.call(r.json()["id"]))["customer"] is None
    # Jane's phone: known, but the match alone does not verify.
    r = await api.post("/api/calls", None, {"caller_number": "+15551230001"})
    assert r.status_code == 201
    assert r.json()["state"] == "ivr" and r.json()["caller_known"] is True
    call_id = r.json()["id"]
    await assert_unverified(api, call_id)
    # Victor's account and PIN on Jane's phone: the call is Victor's, verified.
    result = await verify(api, call_id, *VICTOR)
    assert result["verified"] is True and result["locked"] is False
    context = await api.call(call_id)
    assert context["customer"]["account_number"] == "23456789"
    assert context["customer"]["name"] == "Victor Ortiz"
    assert context["identity"]["verified"] is True
    assert context["identity"]["method"] == "account_pin"
    assert context["identity"]["verified_at"]
    # An unknown caller who verifies as Jane gets Jane's context, her past calls included.
    other = await new_call(api)
    assert (await verify(api, other, *JANE))["verified"] is True
    context = await api.call(other)
    assert context["customer"]["name"] == "Jane Doe"
    assert context["identity"]["method"] == "account_pin"
    assert context["history"] and context["history"][0]["intent"] == "loans"


async def test_attempts_left_2_1_0_then_the_call_is_spent(api: Api) -> None:
    call_id = await new_call(api)
    # A wrong PIN, an unknown account (a short one too is a try) and another account's wrong
    # PIN: three failures of the call, one at most per account, so no account is locked.
    assert await verify(api, call_id, "12345678", "0000") == answer(False, 2, False)
    assert await verify(api, call_id, "1234", "1234") == answer(False, 1, False)
    assert (await api.call(call_id))["customer"] is None
    assert await verify(api, call_id, "23456789", "0000") == answer(False, 0, False)
    await assert_unverified(api, call_id)
    # The call's tries are spent: even the right PIN no longer verifies on it.
    assert await verify(api, call_id, *JANE) == answer(False, 0, False)
    await assert_unverified(api, call_id)
    # Neither account is locked: each verifies on a fresh call.
    for account in (JANE, VICTOR):
        assert (await verify(api, await new_call(api), *account))["verified"] is True


async def test_three_failures_lock_the_account_on_one_call_or_across_calls(api: Api) -> None:
    # Three wrong PINs for Victor on one call: the call is spent and Victor is locked.
    call_id = await new_call(api)
    assert await verify(api, call_id, "23456789", "1111") == answer(False, 2, False)
    assert await verify(api, call_id, "23456789", "2222") == answer(False, 1, False)
    assert await verify(api, call_id, "23456789", "3333") == answer(False, 0, True)
    await assert_unverified(api, call_id)
    assert await verify(api, await new_call(api), *VICTOR) == answer(False, 0, True)
    # Jane is not locked by Victor's failures.
    assert (await verify(api, await new_call(api), *JANE))["verified"] is True
    # Three wrong PINs for Jane on three calls lock her too.
    first, second, third = [await new_call(api) for _ in range(3)]
    assert await verify(api, first, "12345678", "0001") == answer(False, 2, False)
    # After it the second call has two tries left, the account one: the smaller is told.
    assert await verify(api, second, "12345678", "0002") == answer(False, 1, False)
    assert await verify(api, third, "12345678", "0003") == answer(False, 0, True)
    # Locked: even the right PIN answers verified false, locked true, on any call.
    fourth = await new_call(api, "+15551230001")  # Jane's own phone changes nothing
    assert await verify(api, fourth, *JANE) == answer(False, 0, True)
    assert await verify(api, first, *JANE) == answer(False, 0, True)
    for call_id in (first, second, third, fourth):
        await assert_unverified(api, call_id)


async def test_concurrent_failures_spend_no_more_than_three_tries(api: Api) -> None:
    # Six at once on one call: three tries at most, the right pair then fails.
    call_id = await new_call(api)
    results = await asyncio.gather(*(verify(api, call_id, f"9999999{i}", "1234") for i in range(6)))
    assert sorted(r["attempts_left"] for r in results) == [0, 0, 0, 0, 1, 2]
    assert not any(r["verified"] or r["locked"] for r in results)
    assert await verify(api, call_id, *JANE) == answer(False, 0, False)
    await assert_unverified(api, call_id)
    # Six at once on six calls against one account: it locks once, after the third.
    calls = [await new_call(api) for _ in range(6)]
    results = await asyncio.gather(
        *(verify(api, call_id, "12345678", f"000{i}") for i, call_id in enumerate(calls))
    )
    told = sorted((r["attempts_left"], r["locked"]) for r in results)
    assert told == [(0, True)] * 4 + [(1, False), (2, False)]
    assert await verify(api, await new_call(api), *JANE) == answer(False, 0, True)


# --- the 15-minute window and the 15-minute lock, with the clock moved in the database --------


async def age(api: Api, minutes: float, *, unlock: bool = False) -> None:
    """Make every recorded failure (and, if asked, every lock) older by so many minutes."""
    from sqlalchemy import select, update
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.customers.models import Customer, VerificationFailure
    from app.db import utcnow

    engine = create_async_engine(api.live.settings.database_url)
    try:
        async with engine.begin() as conn:
            failures = (
                await conn.execute(select(VerificationFailure.id, VerificationFailure.at))
            ).all()
            assert failures, "no failure recorded"
            for failure_id, at in failures:
                await conn.execute(
                    update(VerificationFailure)
                    .where(VerificationFailure.id == failure_id)
                    .values(at=at - timedelta(minutes=minutes))
                )
            if unlock:
                await conn.execute(
                    update(Customer)
                    .where(Customer.locked_until.is_not(None))
                    .values(locked_until=utcnow() - timedelta(seconds=1))
                )
    finally:
        await engine.dispose()


async def test_the_15_minute_window_and_the_15_minute_lock(api: Api) -> None:
    # Two failures 14 minutes ago still count: a third locks the account.
    for _ in range(2):
        assert (await verify(api, await new_call(api), "12345678", "0000"))["locked"] is False
    await age(api, 14)
    assert await verify(api, await new_call(api), "12345678", "0000") == answer(False, 0, True)
    assert await verify(api, await new_call(api), *JANE) == answer(False, 0, True)
    # The lock is over after 15 minutes: the right pair verifies again.
    await age(api, 16, unlock=True)
    call_id = await new_call(api)
    assert (await verify(api, call_id, *JANE))["verified"] is True
    assert (await api.call(call_id))["identity"]["method"] == "account_pin"
    # Failures older than 15 minutes do not count: two old ones, one new, two tries left.
    for _ in range(2):
        await verify(api, await new_call(api), "12345678", "0000")
    await age(api, 16)
    assert await verify(api, await new_call(api), "12345678", "0000") == answer(False, 2, False)
    assert (await verify(api, await new_call(api), *JANE))["verified"] is True


async def test_a_supervisor_lifts_a_lock_that_the_screen_pop_and_the_customer_show(
    api: Api,
) -> None:
    await api.set_status("alice", "available")
    for pin in ("0001", "0002", "0003"):
        await verify(api, await new_call(api), "12345678", pin)
    # Jane calls again, is recognised by her number, and reaches Alice: the lock is on screen.
    call_id = await new_call(api, "+15551230001")
    assert await verify(api, call_id, *JANE) == answer(False, 0, True)
    r = await api.post(f"/api/calls/{call_id}/handoff", None, {
        "intent": "card_lost", "collected": {}, "utterance": None, "escalate_reason": None,
    })  # fmt: skip
    assert r.status_code == 200, r.text
    context = await api.call(call_id, "alice")
    customer_id = context["customer"]["id"]
    assert context["customer"]["locked"] is True
    supervisor = await api.login("super")
    jane = await api.http.get(f"/api/customers/{customer_id}", headers=supervisor)
    assert jane.json()["locked"] is True

    # An agent may not lift it; an unknown customer is 404.
    assert (await api.post(f"/api/customers/{customer_id}/unlock", "alice")).status_code == 403
    assert (await api.post("/api/customers/999999/unlock", "super")).status_code == 404
    assert (await api.call(call_id, "alice"))["customer"]["locked"] is True

    r = await api.post(f"/api/customers/{customer_id}/unlock", "super")
    assert r.status_code == 200, r.text
    assert r.json()["locked"] is False and r.json()["id"] == customer_id
    assert (await api.post(f"/api/customers/{customer_id}/unlock", "super")).status_code == 200
    assert (await api.call(call_id, "alice"))["customer"]["locked"] is False
    # Three fresh tries: one wrong PIN does not lock her again, and the right one verifies.
    assert await verify(api, await new_call(api), "12345678", "0004") == answer(False, 2, False)
    assert (await verify(api, await new_call(api), *JANE))["verified"] is True
