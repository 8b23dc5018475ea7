"""The wall's hands on any call: a waiting call moved to another queue from its details, and a
connected call given to another agent; the agents' screens follow."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server, set_status

pytestmark = pytest.mark.browser


def test_a_supervisor_moves_a_waiting_call_and_reassigns_a_connected_one(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    boss = sign_in("super")
    # A billing caller waits: nobody with billing is available.
    call_id = ivr.start()
    ivr.verify(call_id)
    ivr.handoff(call_id, key="1", intent="billing")
    row = boss.locator(f"[data-testid=waiting-row][data-call-id='{call_id}']")
    expect(row).to_contain_text("Jane Doe")

    bob = sign_in("bob")
    set_status(bob, "available")
    # Moved to cards from its details: Bob, who takes cards, is offered it at once.
    row.get_by_test_id("waiting-details").click()
    dialog = boss.get_by_test_id("call-dialog")
    dialog.get_by_test_id("call-move-queue").select_option("cards")
    dialog.get_by_test_id("call-move").click()
    expect(boss.get_by_test_id("toast").last).to_have_text(f"Call #{call_id} moved to Cards.")
    expect(bob.get_by_test_id("offer")).to_have_attribute("data-call-id", str(call_id))
    bob.get_by_test_id("offer-accept").click()
    expect(bob.get_by_test_id("pop-state")).to_have_text("Connected")

    # Bob is needed elsewhere: the supervisor gives the call to Alice.
    alice = sign_in("alice")
    set_status(alice, "available")
    bob_row = boss.locator("[data-testid=agent-row]", has_text="Bob Brown")
    bob_row.get_by_test_id("agent-call-details").click()
    alice_id = server.api("alice").get("/api/me").json()["id"]
    dialog.get_by_test_id("call-assign-agent").select_option(str(alice_id))
    dialog.get_by_test_id("call-assign").click()
    expect(alice.get_by_test_id("offer")).to_have_attribute("data-call-id", str(call_id))
    expect(bob.get_by_test_id("last-call")).to_contain_text("Sam Super moved it to Alice Adams")
    expect(bob.get_by_test_id("status-current")).to_have_attribute("data-status", "available")
    alice.get_by_test_id("offer-accept").click()
    moves = alice.get_by_test_id("transfer-item")
    expect(moves).to_have_count(2)
    expect(moves.first).to_contain_text("Sam Super gave it to queue Cards")
    expect(moves.last).to_contain_text("Sam Super moved it from Bob Brown to Alice Adams")
