"""The console works whole under its Content-Security-Policy: sign-in, an agent taking a call,
the supervisor's wall; the browser blocks nothing on the way."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, set_status
from .csp import watch_csp

pytestmark = pytest.mark.browser


def test_no_console_page_breaks_its_policy(open_page: Callable[..., Page], ivr: Ivr) -> None:
    alice = open_page()
    alice_csp = watch_csp(alice)
    alice.goto("/")
    alice.get_by_label("Username").fill("alice")
    alice.get_by_label("Password").fill("demo")
    alice.get_by_test_id("signin-submit").click()
    # The websocket to its own host is allowed by connect-src 'self'.
    expect(alice.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "live")
    set_status(alice, "available")

    boss = open_page()
    boss_csp = watch_csp(boss)
    boss.goto("/")
    boss.get_by_label("Username").fill("super")
    boss.get_by_label("Password").fill("demo")
    boss.get_by_test_id("signin-submit").click()
    expect(boss.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "live")

    call_id = ivr.lost_card_call()
    offer = alice.get_by_test_id("offer")
    expect(offer).to_have_attribute("data-call-id", str(call_id))
    # The ringing offer's meter is drawn through the CSSOM, which the policy allows.
    expect(alice.get_by_test_id("offer-meter")).to_have_attribute(
        "style", re.compile(r"width: [\d.]+%")
    )
    alice.get_by_test_id("offer-accept").click()
    expect(alice.get_by_test_id("pop-state")).to_have_text("Connected")
    expect(boss.get_by_test_id("queue-row")).to_have_count(4)

    for csp in (alice_csp, boss_csp):
        assert len(csp.documents) >= 2  # the sign-in page, then the role's own
        assert csp.without_policy == []
        assert csp.violations == []
