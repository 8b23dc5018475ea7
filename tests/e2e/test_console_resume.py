"""A dropped websocket says so, reconnects with last_seq, and the offer sent meanwhile arrives."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, set_status

pytestmark = pytest.mark.browser


def test_offer_sent_while_disconnected_arrives_after_reconnect(
    ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    alice = sign_in("alice")
    set_status(alice, "available")
    seq_before = alice.evaluate("window.tellonce.live.lastSeq")

    # Drop the socket as a network failure would, and keep it down until released.
    alice.evaluate("window.tellonce.live.drop({ hold: true })")
    banner = alice.get_by_test_id("connection-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Connection lost")
    expect(alice.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "down")

    call_id = ivr.lost_card_call()
    offer = alice.get_by_test_id("offer")
    expect(offer).to_be_hidden()

    alice.evaluate("window.tellonce.live.release()")
    expect(alice.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "live")
    expect(banner).to_be_hidden()
    expect(offer).to_be_visible()
    expect(offer).to_have_attribute("data-call-id", str(call_id))
    expect(offer.get_by_test_id("offer-caller")).to_have_text("Jane Doe")
    assert alice.evaluate("window.tellonce.live.lastSeq") > seq_before
    alice.get_by_test_id("offer-accept").click()
    expect(alice.get_by_test_id("pop-state")).to_have_text("Connected")


def test_reconnects_by_itself_with_backoff(ivr: Ivr, sign_in: Callable[..., Page]) -> None:
    alice = sign_in("alice")
    set_status(alice, "available")
    alice.evaluate("window.tellonce.live.drop()")
    expect(alice.get_by_test_id("connection-banner")).to_contain_text("Reconnecting")
    expect(alice.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "live")
    call_id = ivr.lost_card_call()
    expect(alice.get_by_test_id("offer")).to_have_attribute("data-call-id", str(call_id))
