"""A caller locked out by three wrong PINs: the agent sees why, a supervisor lifts the lock."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server, set_status

pytestmark = pytest.mark.browser


def test_the_lock_shows_on_the_screen_pop_and_a_supervisor_lifts_it(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    for pin in ("1111", "2222", "3333"):
        call_id = ivr.start()
        ivr.post(f"/api/calls/{call_id}/verify", {"account_number": "12345678", "pin": pin})
    # Jane calls again from her own number; the lock keeps her unverified; she asks for a person.
    call_id = ivr.start()
    told = ivr.post(f"/api/calls/{call_id}/verify", {"account_number": "12345678", "pin": "1234"})
    assert told["locked"] is True, told
    queued = ivr.handoff(call_id, key="0", intent="agent", escalate_reason="caller_requested")
    assert queued["queue"] == "escalations", queued

    carol = sign_in("carol")
    set_status(carol, "available")
    lock = carol.get_by_test_id("pop-locked")
    expect(lock).to_contain_text("Verification locked: three wrong PINs")
    expect(lock).to_contain_text("A supervisor can lift it.")
    expect(lock.get_by_test_id("pop-unlock")).to_have_count(0)

    boss = sign_in("super")
    row = boss.locator(f"[data-testid=escalation-row][data-call-id='{call_id}']")
    # The row as the wall last draws it (offered to Carol): a click on a row the wall is still
    # redrawing, as the offer's events arrive, can open nothing.
    expect(row).to_contain_text("offered, not yet accepted")
    row.get_by_test_id("escalation-details").click()
    dialog = boss.get_by_test_id("call-dialog")
    expect(dialog.get_by_test_id("pop-locked")).to_be_visible()
    dialog.get_by_test_id("pop-unlock").click()
    expect(boss.get_by_test_id("toast").last).to_have_text("Jane Doe can verify again.")
    expect(dialog.get_by_test_id("pop-locked")).to_have_count(0)

    # The phone tree can verify her at once.
    again = ivr.start()
    told = ivr.post(f"/api/calls/{again}/verify", {"account_number": "12345678", "pin": "1234"})
    assert told["verified"] is True, told
