"""An agent's PC clock that is minutes off still shows the offer's real time left."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import OFFER_TIMEOUT_S, Ivr, set_status

pytestmark = pytest.mark.browser


def test_countdown_follows_the_server_clock(ivr: Ivr, sign_in: Callable[..., Page]) -> None:
    alice = sign_in("alice")
    # Five minutes slow: a countdown read off this clock would show 300 s too many.
    alice.clock.install(time=time.time() - 300)
    alice.reload()
    expect(alice.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "live")
    set_status(alice, "available")
    ivr.lost_card_call()
    countdown = alice.get_by_test_id("offer-countdown")
    expect(countdown).to_have_text(re.compile(r"^\d+s$"))
    left = int(countdown.inner_text().rstrip("s"))
    # The HTTP Date header has whole seconds, so the estimate may be a second or two out.
    assert int(OFFER_TIMEOUT_S) - 10 <= left <= int(OFFER_TIMEOUT_S) + 2, left
