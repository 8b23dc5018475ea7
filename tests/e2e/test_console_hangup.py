"""The caller hangs up: the agent wraps from wrap-up; a reload never loses the call on screen."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server, set_status

pytestmark = pytest.mark.browser


def test_reload_keeps_the_call_and_caller_hangup_leads_to_wrap(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    alice = sign_in("alice")
    set_status(alice, "available")
    call_id = ivr.lost_card_call()
    expect(alice.get_by_test_id("offer")).to_be_visible()

    # A reload while the offer rings shows it again, countdown included.
    alice.reload()
    expect(alice.get_by_test_id("offer")).to_have_attribute("data-call-id", str(call_id))
    expect(alice.get_by_test_id("offer-countdown")).to_have_text(re.compile(r"^\d+s$"))
    alice.get_by_test_id("offer-accept").click()
    expect(alice.get_by_test_id("pop-state")).to_have_text("Connected")

    alice.reload()
    expect(alice.get_by_test_id("pop-state")).to_have_text("Connected")
    expect(alice.get_by_test_id("pop-customer-name")).to_have_text("Jane Doe")

    ivr.post(f"/api/calls/{call_id}/hangup")
    expect(alice.get_by_test_id("pop-state")).to_have_text("Caller hung up")
    expect(alice.get_by_test_id("call-banner")).to_contain_text("hung up")
    expect(alice.get_by_test_id("wrap-form")).to_be_visible()
    expect(alice.get_by_test_id("tab-transfer")).to_be_hidden()
    alice.get_by_test_id("wrap-disposition-follow_up").check()
    alice.get_by_test_id("wrap-sentiment-neutral").check()
    alice.get_by_test_id("wrap-submit").click()
    expect(alice.get_by_test_id("idle")).to_be_visible()
    expect(alice.get_by_test_id("last-call")).to_contain_text("wrapped: Follow-up")
    assert server.api("super").get(f"/api/calls/{call_id}").json()["state"] == "ended"


def test_supervisor_sees_phone_tree_leave_and_abandon(
    ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    boss = sign_in("super")
    expect(boss.get_by_test_id("figure-calls")).to_have_text("0")
    first = ivr.start()
    second = ivr.start(caller="+15550001111")
    rows = boss.get_by_test_id("ivr-row")
    expect(rows).to_have_count(2)
    expect(boss.get_by_test_id("ivr-count")).to_have_text("2")

    ivr.verify(first)
    ivr.handoff(first, key="3", intent="loans")
    expect(rows).to_have_count(1)
    expect(
        boss.locator("[data-testid=queue-row][data-queue=loans]").get_by_test_id("queue-waiting")
    ).to_have_text("1")

    ivr.post(f"/api/calls/{second}/hangup")
    expect(rows).to_have_count(0)
    expect(boss.get_by_test_id("ivr-empty")).to_be_visible()
    expect(boss.get_by_test_id("figure-calls")).to_have_text("2")
    expect(boss.get_by_test_id("figure-abandoned")).to_have_text("1")
