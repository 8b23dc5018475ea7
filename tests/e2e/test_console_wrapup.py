"""After-call work (TELLONCE_WRAPUP_S): the agent sees it, and how long is left, counting down."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, set_status

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("server_env", [{"TELLONCE_WRAPUP_S": "20"}], indirect=True)
def test_after_call_work_counts_down_then_the_agent_is_available(
    ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    alice = sign_in("alice")
    set_status(alice, "available")
    ivr.lost_card_call()
    alice.get_by_test_id("offer-accept").click()
    expect(alice.get_by_test_id("pop-state")).to_have_text("Connected")
    alice.keyboard.press("Alt+w")
    alice.get_by_test_id("wrap-disposition-resolved").check()
    alice.get_by_test_id("wrap-sentiment-neutral").check()
    alice.get_by_test_id("wrap-notes").press("Control+Enter")

    expect(alice.get_by_test_id("idle")).to_be_visible()
    expect(alice.get_by_test_id("status-current")).to_have_attribute("data-status", "wrapup")
    expect(alice.get_by_test_id("idle-title")).to_have_text("After-call work")
    countdown = alice.get_by_test_id("wrapup-countdown")
    expect(countdown).to_have_text(re.compile(r"^(1\d|20)s$"))
    first = int(countdown.inner_text().rstrip("s"))
    expect(alice.get_by_test_id("idle-hint")).to_contain_text("you will be available in")
    # It counts down by itself, with no event from the server.
    expect(countdown).not_to_have_text(f"{first}s", timeout=3000)
    assert int(countdown.inner_text().rstrip("s")) < first
