"""An offer nobody answers counts down to zero, is withdrawn, and the agent is set away."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, set_status

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("server_env", [{"TELLONCE_OFFER_TIMEOUT_S": "4"}], indirect=True)
def test_unanswered_offer_is_withdrawn(
    ivr: Ivr, sign_in: Callable[..., Page], server_env: dict[str, str]
) -> None:
    alice = sign_in("alice")
    set_status(alice, "available")
    call_id = ivr.lost_card_call()
    offer = alice.get_by_test_id("offer")
    expect(offer).to_have_attribute("data-call-id", str(call_id))
    expect(alice.get_by_test_id("offer-countdown")).to_have_text(re.compile(r"^[1-4]s$"))
    # In the last five seconds the banner turns urgent.
    expect(offer).to_have_class(re.compile(r"\burgent\b"))
    expect(offer).to_be_hidden(timeout=15_000)
    expect(alice.get_by_test_id("toast").last).to_contain_text("not answered in time")
    expect(alice.get_by_test_id("last-call")).to_contain_text("offer withdrawn")
    expect(alice.get_by_test_id("status-current")).to_have_attribute("data-status", "away")
    expect(alice.get_by_test_id("status-away")).to_have_attribute("aria-pressed", "true")
