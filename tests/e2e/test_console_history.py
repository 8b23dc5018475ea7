"""The screen pop's earlier calls say what each was about, an escalation without an intent too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server, set_status

pytestmark = pytest.mark.browser


def test_an_earlier_escalated_call_shows_its_reason(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    # Jane's first call today: the phone tree did not understand her, Carol took it.
    with server.api("carol") as carol:
        assert carol.put("/api/me/status", json={"status": "available"}).status_code == 200
        call_id = ivr.start()
        ivr.verify(call_id)
        queued = ivr.handoff(call_id, key="0", utterance="my husband's card was swallowed")
        assert queued["queue"] == "escalations", queued
        assert carol.post(f"/api/calls/{call_id}/accept").status_code == 200
        wrap = {"disposition": "resolved", "sentiment": "neutral"}
        assert carol.post(f"/api/calls/{call_id}/wrap", json=wrap).status_code == 200

    alice = sign_in("alice")
    set_status(alice, "available")
    ivr.lost_card_call()

    pop = alice.get_by_test_id("screen-pop")
    history = pop.get_by_test_id("history-item")
    expect(history).to_have_count(4)
    expect(history.first.get_by_test_id("history-topic")).to_have_text(
        "Escalation (not in the script)"
    )
    expect(pop.get_by_test_id("pop-caller-card")).to_contain_text("Escalation (not in the script)")
