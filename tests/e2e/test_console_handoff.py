"""An offer pops up with the phone tree's context; a transfer carries it, and the note, onwards."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server, set_status

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
NOTE = "Card blocked already. Replacement to be sent to her hotel in Lisbon."


def save_screenshot(page: Page, name: str, tmp_path: Path) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    if os.environ.get("TELLONCE_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOTS / name)


def expect_lost_card_context(page: Page) -> None:
    pop = page.get_by_test_id("screen-pop")
    expect(pop.get_by_test_id("pop-customer-name")).to_have_text("Jane Doe")
    expect(pop.get_by_test_id("pop-identity")).to_have_attribute("data-verified", "true")
    expect(pop.get_by_test_id("pop-identity")).to_contain_text(
        re.compile(r"Verified by account number and PIN at \d")
    )
    expect(pop.get_by_test_id("pop-account")).to_have_text("12345678")
    expect(pop.get_by_test_id("pop-intent")).to_have_text("Lost or stolen card")
    expect(pop.get_by_test_id("pop-queue")).to_have_text("Cards")
    steps = pop.get_by_test_id("ivr-step")
    expect(steps).to_have_count(4)
    expect(steps.nth(0)).to_contain_text("Language")
    expect(steps.nth(1)).to_contain_text("12345678#")
    expect(steps.nth(2)).to_contain_text("****")
    expect(steps.nth(3)).to_contain_text("Main menu")
    expect(pop.get_by_test_id("pop-collected")).to_contain_text("4242")
    # The demo customer has three earlier calls; the newest is the unresolved loans call.
    expect(pop.get_by_test_id("history-item")).to_have_count(3)
    expect(pop.get_by_test_id("history-item").first).to_contain_text("Unresolved")
    expect(pop.get_by_test_id("history-item").first).to_contain_text("Negative")


def test_offer_accept_transfer_wrap(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page], tmp_path: Path
) -> None:
    alice = sign_in("alice")
    bob = sign_in("bob")
    expect(alice.get_by_test_id("agent-name")).to_have_text("Alice Adams")
    set_status(alice, "available")

    call_id = ivr.lost_card_call(collected={"card_last_digits": "4242"})

    offer = alice.get_by_test_id("offer")
    expect(offer).to_be_visible()
    expect(offer).to_have_attribute("data-call-id", str(call_id))
    expect(offer.get_by_test_id("offer-caller")).to_have_text("Jane Doe")
    expect(offer.get_by_test_id("identity-badge")).to_have_attribute("data-verified", "true")
    expect(offer.get_by_test_id("offer-reason")).to_have_text("Lost or stolen card")
    expect(offer.get_by_test_id("offer-countdown")).to_have_text(re.compile(r"^\d+s$"))
    expect(alice.get_by_test_id("status-current")).to_have_attribute("data-status", "offered")
    # The screen pop is readable while the offer is still ringing.
    expect_lost_card_context(alice)

    # Nothing the phone tree collected is asked again: no field anywhere for an account number.
    expect(alice.locator("[name*=account i], [id*=account i]")).to_have_count(0)
    expect(alice.get_by_label(re.compile("account", re.I))).to_have_count(0)

    alice.keyboard.press("a")
    expect(offer).to_be_hidden()
    expect(alice.get_by_test_id("pop-state")).to_have_text("Connected")
    expect(alice.get_by_test_id("status-current")).to_have_attribute("data-status", "busy")
    expect(alice.get_by_test_id("pop-talk-time")).to_have_text(re.compile(r"^\d+s$"))

    alice.get_by_test_id("note-text").fill("Customer says the card went missing on the tram.")
    alice.get_by_test_id("note-submit").click()
    expect(alice.get_by_test_id("note-item")).to_contain_text("went missing on the tram")

    set_status(bob, "available")

    alice.keyboard.press("Alt+t")
    expect(alice.get_by_test_id("transfer-form")).to_be_visible()
    bob_id = server.api("bob").get("/api/me").json()["id"]
    # Bob is offered as a target once the page has read that he is signed in.
    expect(alice.locator(f"option[value='agent:{bob_id}']")).to_be_enabled()
    alice.get_by_test_id("transfer-target").select_option(f"agent:{bob_id}")
    alice.get_by_test_id("transfer-note").fill(NOTE)
    alice.get_by_test_id("transfer-submit").click()
    expect(alice.get_by_test_id("idle")).to_be_visible()
    expect(alice.get_by_test_id("last-call")).to_contain_text("transferred to Bob Brown")
    expect(alice.get_by_test_id("status-current")).not_to_have_attribute("data-status", "busy")

    # Bob gets the same call with the same context, plus Alice's note and the transfer.
    bob_offer = bob.get_by_test_id("offer")
    expect(bob_offer).to_be_visible()
    expect(bob_offer).to_have_attribute("data-call-id", str(call_id))
    bob.get_by_test_id("offer-accept").click()
    expect(bob.get_by_test_id("pop-state")).to_have_text("Connected")
    expect_lost_card_context(bob)
    transfer = bob.get_by_test_id("transfer-item")
    expect(transfer).to_have_count(1)
    expect(transfer).to_contain_text("Alice Adams transferred to Bob Brown")
    expect(transfer).to_contain_text(NOTE)
    expect(bob.get_by_test_id("note-item")).to_contain_text("went missing on the tram")
    # One figure for the caller's wait: queued before Alice answered plus on hold before Bob
    # did, as the server counts it, never the time Alice talked to her.
    waited = server.api("super").get(f"/api/calls/{call_id}").json()["wait_s"]
    expect(bob.get_by_test_id("pop-waited")).to_have_text(f"waited {int(waited)}s in queue")
    save_screenshot(bob, "agent.png", tmp_path)

    # Bob wraps with the keyboard alone.
    bob.keyboard.press("Alt+w")
    expect(bob.get_by_test_id("wrap-form")).to_be_visible()
    bob.get_by_test_id("wrap-disposition-resolved").check()
    bob.get_by_test_id("wrap-sentiment-positive").check()
    bob.get_by_test_id("wrap-notes").fill("Replacement ordered.")
    bob.get_by_test_id("wrap-notes").press("Control+Enter")
    expect(bob.get_by_test_id("idle")).to_be_visible()
    expect(bob.get_by_test_id("last-call")).to_contain_text("wrapped: Resolved")
    expect(bob.get_by_test_id("status-current")).to_have_attribute("data-status", "available")

    call = server.api("super").get(f"/api/calls/{call_id}").json()
    assert call["state"] == "ended"
    assert call["disposition"] == "resolved"
    assert call["sentiment"] == "positive"


def test_reject_returns_call_and_keyboard_accepts(ivr: Ivr, sign_in: Callable[..., Page]) -> None:
    alice = sign_in("alice")
    bob = sign_in("bob")
    set_status(alice, "available")
    call_id = ivr.lost_card_call()
    expect(alice.get_by_test_id("offer")).to_be_visible()
    alice.keyboard.press("r")
    expect(alice.get_by_test_id("offer")).to_be_hidden()
    expect(alice.get_by_test_id("last-call")).to_contain_text("rejected")
    expect(alice.get_by_test_id("status-current")).to_have_attribute("data-status", "available")

    # Not offered to Alice again; Bob, going available, gets it and accepts with Alt+A.
    set_status(bob, "available")
    expect(bob.get_by_test_id("offer")).to_have_attribute("data-call-id", str(call_id))
    # The key goes to the page in front: Alice's page was opened, and last used, before Bob's.
    bob.bring_to_front()
    bob.keyboard.press("Alt+a")
    expect(bob.get_by_test_id("pop-state")).to_have_text("Connected")
    expect(alice.get_by_test_id("offer")).to_be_hidden()
