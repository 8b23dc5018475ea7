"""The wall says why callers wait, and a new agent appears on it without a reload."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server

pytestmark = pytest.mark.browser


def test_the_wall_says_why_callers_wait_and_lists_new_agents(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page]
) -> None:
    boss = sign_in("super")
    # A loans caller, and nobody who takes loans calls is signed in (Bob is offline).
    call_id = ivr.start()
    ivr.verify(call_id)
    ivr.handoff(call_id, key="3", intent="loans")
    loans = boss.locator("[data-testid=queue-row][data-queue=loans]")
    expect(loans.get_by_test_id("queue-reason")).to_have_text("Nobody with this skill is signed in")

    # Bob signs in and takes it; he rejects it, and the wall says so.
    bob = sign_in("bob")
    # Not set_status: the waiting call is offered to him at once, so "available" may never show.
    bob.get_by_test_id("status-available").click()
    expect(bob.get_by_test_id("offer")).to_be_visible()
    # The button, not the R key: the key goes to the focused page, which a loaded machine may
    # not have settled yet (the keyboard is test_console_handoff.py's to try).
    bob.get_by_test_id("offer-reject").click()
    expect(bob.get_by_test_id("offer")).to_be_hidden()
    expect(loans.get_by_test_id("queue-reason")).to_have_text(
        "Rejected by the agents available: offered to them again shortly"
    )

    # A supervisor adds an agent: the wall lists her at once.
    with server.api("super") as api:
        made = api.post(
            "/api/users",
            json={"username": "erin", "password": "erin-secret", "display_name": "Erin Evans",
                  "role": "agent", "skills": ["loans"]},
        )  # fmt: skip
        assert made.status_code == 201, made.text
    erin = boss.locator(f"[data-testid=agent-row][data-agent-id='{made.json()['id']}']")
    expect(erin).to_contain_text("Erin Evans")
    expect(erin).to_have_attribute("data-status", "offline")
