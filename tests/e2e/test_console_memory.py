"""The screen pop remembers: "asked again" in one click, and a repeat caller's earlier notes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server, set_status

pytestmark = pytest.mark.browser


def test_asked_again_is_one_click_beside_each_answer_and_the_identity(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    alice = sign_in("alice")
    set_status(alice, "available")
    call_id = ivr.lost_card_call(collected={"card_last4": "4242"})
    alice.get_by_test_id("offer-accept").click()
    pop = alice.get_by_test_id("screen-pop")
    expect(pop).to_have_attribute("data-state", "connected")
    button = pop.get_by_test_id("asked-again-card_last4")
    expect(button).to_have_text("Asked again")
    button.click()
    expect(button).to_have_text("Asked again ✓")
    expect(button).to_have_attribute("aria-pressed", "true")
    pop.get_by_test_id("asked-again-identity").click()
    expect(pop.get_by_test_id("asked-again-identity")).to_have_text("Asked again ✓")
    expect(pop.get_by_test_id("pop-effort")).to_contain_text("asked again 2")
    with server.api("super") as sup:
        context = sup.get(f"/api/calls/{call_id}").json()
    assert sorted(a["field"] for a in context["asked_again"]) == ["card_last4", "identity"]
    assert context["effort"]["asked_again"] == 2


def test_a_repeat_caller_shows_the_earlier_calls_notes_and_promise_first(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    due = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    with server.api("alice") as alice:
        assert alice.put("/api/me/status", json={"status": "available"}).status_code == 200
        first = ivr.lost_card_call()
        assert alice.post(f"/api/calls/{first}/accept").status_code == 200
        note = {"text": "Courier arrives Friday with the new card."}
        assert alice.post(f"/api/calls/{first}/notes", json=note).status_code == 201
        wrap = {
            "disposition": "follow_up",
            "sentiment": "neutral",
            "promise": {"text": "Call Jane once the courier has been", "due": due},
        }
        assert alice.post(f"/api/calls/{first}/wrap", json=wrap).status_code == 200
        assert alice.put("/api/me/status", json={"status": "away"}).status_code == 200

    bob = sign_in("bob")
    set_status(bob, "available")
    second = ivr.lost_card_call()
    pop = bob.get_by_test_id("screen-pop")
    expect(pop).to_have_attribute("data-call-id", str(second))
    repeat = pop.get_by_test_id("pop-repeat")
    expect(repeat).to_contain_text("Second call about this")
    expect(repeat.get_by_test_id("pop-repeat-outcome")).to_contain_text("Follow-up")
    # Bob never handled the first call: its notes come from it, opened for the call he has.
    expect(repeat.get_by_test_id("pop-repeat-notes")).to_contain_text(
        "Courier arrives Friday with the new card."
    )
    promise = pop.get_by_test_id("promise-item")
    expect(promise).to_have_count(1)
    expect(promise).to_contain_text("Call Jane once the courier has been")
    # The earlier calls show their last note; the repeated one is open already, the others
    # open in place, though Bob handled none of them.
    history = pop.get_by_test_id("history-item")
    earlier = history.first
    expect(earlier.get_by_test_id("history-note")).to_contain_text("Courier arrives Friday")
    expect(earlier.get_by_test_id("earlier-detail")).to_contain_text(
        "Courier arrives Friday with the new card."
    )
    older = history.nth(1)
    expect(older.get_by_test_id("earlier-detail")).to_have_count(0)
    older.get_by_test_id("history-open").click()
    expect(older.get_by_test_id("earlier-detail")).to_contain_text("No notes on that call.")
    bob.get_by_test_id("offer-accept").click()
    expect(pop).to_have_attribute("data-state", "connected")
    promise.get_by_test_id("promise-keep").click()
    expect(promise).to_contain_text("kept by Bob Brown")
